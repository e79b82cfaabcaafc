import type { Request, Response } from 'express';
import type { Hold, UsageOutcome } from '../domain/billing/metering.service.js';
import type { CatalogModel } from '../domain/models/models.service.js';
import type { Logger } from '../logger.js';
import type { JsonBody } from './body.js';
import type { EndpointSpec, MeteredRequest } from './endpoints.js';
import { describeError } from './errors.js';
import { approxTokens, type Estimate } from './estimate.js';
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
  estimate: Estimate;
  hold: Hold;
  startedAt: number;
}

export interface Charge {
  usage: TokenUsage;
  outcome: UsageOutcome;
  estimated: boolean;
  httpStatus: number;
}

/** The status recorded for a request whose client went away (nginx's convention; never sent). */
export const CLIENT_CLOSED = 499;
/** Upstream error bodies are passed through, but not without bound. */
export const MAX_ERROR_BODY_BYTES = 1024 * 1024;
export const NOTHING: TokenUsage = { inputTokens: 0, outputTokens: 0 };

/**
 * The charge for a request from what its stream showed: the provider's usage when it reported it (exact);
 * otherwise the input as reported at the start (Anthropic) or estimated from its bound, plus one token per output
 * delta received — flagged estimated. With no stream at all (an abort before the response), just the input.
 */
export function earlyEnd(x: Exchange, stream: StreamMeter | null, outcome: UsageOutcome, httpStatus: number): Charge {
  if (stream?.usage) return { usage: stream.usage, outcome, estimated: false, httpStatus };
  return {
    usage: {
      inputTokens: stream?.inputTokens ?? approxTokens(x.estimate.inputTokenBound),
      outputTokens: stream?.outputDeltas ?? 0,
    },
    outcome,
    estimated: true,
    httpStatus,
  };
}

export interface ClientState {
  gone: boolean;
}

/** Notices the client going away before the response is complete, and aborts the upstream request then. */
export function watchClient(req: Request, res: Response, abort: AbortController): ClientState {
  const state: ClientState = { gone: req.socket.destroyed || res.destroyed };
  res.once('close', () => {
    if (res.writableFinished) return;
    state.gone = true;
    abort.abort();
  });
  return state;
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
