import type { Request, Response } from 'express';
import type { Hold, UsageOutcome } from '../domain/billing/metering.service.js';
import type { CatalogModel } from '../domain/models/models.service.js';
import { NO_TOKENS } from '../domain/models/pricing.js';
import type { Logger } from '../logger.js';
import type { JsonBody } from './body.js';
import type { EndpointSpec, MeteredRequest } from './endpoints.js';
import { describeError } from './errors.js';
import type { Estimate } from './estimate.js';
import type { Translator } from './translate/index.js';
import type { UpstreamResponse } from './upstreams/http.js';
import type { StreamMeter, TokenUsage } from './upstreams/types.js';

/** One admitted request on its way to the upstream and back. */
export interface Exchange {
  req: Request;
  res: Response;
  endpoint: EndpointSpec;
  request: MeteredRequest;
  body: JsonBody;
  model: CatalogModel;
  /** The request as translated for an upstream of another format, or null when it goes as the client wrote it. */
  translation: Translation | null;
  estimate: Estimate;
  hold: Hold;
  startedAt: number;
}

export interface Translation {
  translator: Translator;
  /** The upstream's request body. */
  body: Record<string, unknown>;
  maxOutputTokens: number | null;
}

export interface Charge {
  usage: TokenUsage;
  outcome: UsageOutcome;
  estimated: boolean;
  httpStatus: number;
  /** The id the upstream gave a response it stores (Responses API), recorded for the key's account once settled. */
  responseId?: string | null;
}

/** The status recorded for a request whose client went away (nginx's convention; never sent). */
export const CLIENT_CLOSED = 499;
/** Upstream error bodies are passed through, but not without bound. */
export const MAX_ERROR_BODY_BYTES = 1024 * 1024;
export const NOTHING: TokenUsage = NO_TOKENS;

/**
 * The charge for a request from what its stream showed: the provider's usage when it reported it (exact);
 * otherwise an estimate that errs high, flagged estimated — the input by kind as reported at the start
 * (Anthropic's message_start), else its whole bound from the estimate at the full input price, plus the meter's
 * upper bound of the output received (never more than the request's output bound). With no stream at all (an
 * abort before the response), just the input bound.
 */
export async function earlyEnd(x: Exchange, stream: StreamMeter | null, outcome: UsageOutcome, httpStatus: number): Promise<Charge> {
  if (stream?.usage) return { usage: stream.usage, outcome, estimated: false, httpStatus };
  return {
    usage: {
      ...NOTHING,
      ...(stream?.reportedInput ?? { inputTokens: x.estimate.inputTokenBound }),
      outputTokens: stream ? await stream.outputTokensBound(x.estimate.outputTokenBound) : 0,
    },
    outcome,
    estimated: true,
    httpStatus,
  };
}

/**
 * How long a stream whose upstream has finished generating is read on after its client left, for the usage report
 * that follows: long enough for any real provider (it comes at once), short enough that a stuck upstream does not
 * hold a connection.
 */
export const USAGE_GRACE_MS = 30_000;

/**
 * Notices the client going away before the response is complete. The upstream request is aborted then — at once,
 * unless the upstream has already finished generating (`readOnWhen`): then all that is left is its usage report,
 * so it is read on (for at most `graceMs`) and the request charged the provider's own usage, not an estimate.
 */
export class ClientWatch {
  gone: boolean;
  private finished: () => boolean = () => false;
  private grace: NodeJS.Timeout | undefined;

  constructor(req: Request, res: Response, private readonly abort: AbortController, graceMs = USAGE_GRACE_MS) {
    this.gone = req.socket.destroyed || res.destroyed;
    res.once('close', () => {
      if (res.writableFinished) return;
      this.gone = true;
      if (this.finished()) {
        this.grace = setTimeout(() => abort.abort(), graceMs);
        this.grace.unref();
      } else abort.abort();
    });
  }

  /** From now on a client that leaves once `finished()` holds lets the upstream stream run to its end. */
  readOnWhen(finished: () => boolean): void {
    this.finished = finished;
  }

  /** Ends the upstream request while the client stays: a stream cut at its hold. */
  cutUpstream(): void {
    this.abort.abort();
  }

  /** The exchange is over: nothing is left to abort. */
  stop(): void {
    clearTimeout(this.grace);
  }
}

export function watchClient(req: Request, res: Response, abort: AbortController): ClientWatch {
  return new ClientWatch(req, res, abort);
}

export async function collect(body: AsyncIterable<Buffer>, limit = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error('upstream body too large');
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

export function header(upstream: UpstreamResponse, name: string): string | undefined {
  const value = upstream.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Response headers worth passing on: the provider's request id (for support tickets) and ours. */
export function passedHeaders(upstream: UpstreamResponse, x: Exchange): Record<string, string> {
  const headers: Record<string, string> = { 'x-modelbridge-request-id': x.hold.requestId };
  for (const name of ['x-request-id', 'request-id']) {
    const value = header(upstream, name);
    if (value) headers[name] = value;
  }
  return headers;
}

export function logUpstreamFailure(logger: Logger, x: Exchange, err: unknown): void {
  logger.warn({ requestId: x.hold.requestId, model: x.model.id, err: describeError(err) }, 'upstream request failed');
}
