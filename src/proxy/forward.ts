import type { Request, Response } from 'express';
import { StringDecoder } from 'node:string_decoder';
import type { Hold, UsageOutcome } from '../domain/billing/metering.service.js';
import { requestCost, type CatalogModel } from '../domain/models/models.service.js';
import type { JsonBody } from './body.js';
import type { ProxyContext } from './context.js';
import type { EndpointSpec, MeteredRequest } from './endpoints.js';
import { describeError, ProxyError, upstreamFailed } from './errors.js';
import { approxTokens, type Estimate } from './estimate.js';
import { isUpstreamTimeout, type UpstreamResponse, type UpstreamTarget } from './upstreams/http.js';
import { SseSplitter } from './upstreams/sse.js';
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

interface Charge {
  usage: TokenUsage;
  outcome: UsageOutcome;
  estimated: boolean;
  httpStatus: number;
}

/** The status recorded for a request whose client went away (nginx's convention; never sent). */
const CLIENT_CLOSED = 499;
/** Upstream error bodies are passed through, but not without bound. */
const MAX_ERROR_BODY_BYTES = 1024 * 1024;
const NOTHING: TokenUsage = { inputTokens: 0, outputTokens: 0 };

/**
 * Forwards an admitted request and settles it exactly once, whatever happens:
 * - upstream unreachable, timed out or failing before any output: nothing charged (upstream_error);
 * - client gone: the upstream request is aborted and what was consumed is charged, estimated (client_aborted);
 * - otherwise: the provider's reported usage at catalog prices (ok).
 * Settlement runs before the response completes, so a client that has its answer also sees it metered.
 */
export async function forward(ctx: ProxyContext, x: Exchange): Promise<UsageOutcome> {
  const settlement = new Settler(ctx, x);
  try {
    const target = ctx.upstreams.resolve(x.model.provider, x.req.socket);
    const abort = new AbortController();
    const client = watchClient(x.req, x.res, abort);
    if (client.gone) return await settlement.charge({ usage: NOTHING, outcome: 'client_aborted', estimated: false, httpStatus: CLIENT_CLOSED });

    let upstream: UpstreamResponse;
    try {
      upstream = await ctx.http.send(target, x.endpoint.name, { body: upstreamBody(x, target), clientHeaders: x.req.headers, signal: abort.signal });
    } catch (err) {
      if (client.gone) return await settlement.charge(earlyEnd(x, null, 'client_aborted', CLIENT_CLOSED));
      await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: isUpstreamTimeout(err) ? 504 : 502 });
      logUpstreamFailure(ctx, x, err);
      throw upstreamFailed(isUpstreamTimeout(err));
    }
    if (upstream.statusCode >= 400) return await relayUpstreamError(ctx, x, settlement, upstream, target);
    if (x.request.stream) return await relayStream(ctx, x, settlement, upstream, target, client);
    return await relayJson(ctx, x, settlement, upstream, target, client);
  } catch (err) {
    // A bug of ours after admission: release the hold rather than leave it to the release job.
    if (!settlement.done) await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: 500 });
    throw err;
  }
}

/** The client's body, as received unless metering needs a change (stream usage, the upstream's model name). */
function upstreamBody(x: Exchange, target: UpstreamTarget): string | Buffer {
  const body = x.body.json;
  let changed = target.provider.adaptBody(x.endpoint.name, body);
  if (body.model !== x.model.upstreamModel) {
    body.model = x.model.upstreamModel;
    changed = true;
  }
  return changed ? JSON.stringify(body) : x.body.raw;
}

async function relayJson(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientState): Promise<UsageOutcome> {
  let raw: Buffer;
  try {
    raw = await collect(upstream.body);
  } catch (err) {
    if (client.gone) return settlement.charge(earlyEnd(x, null, 'client_aborted', CLIENT_CLOSED));
    await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: isUpstreamTimeout(err) ? 504 : 502 });
    logUpstreamFailure(ctx, x, err);
    throw upstreamFailed(isUpstreamTimeout(err));
  }
  const reported = usageOfJson(target, raw);
  const charge: Charge = reported
    ? { usage: reported, outcome: client.gone ? 'client_aborted' : 'ok', estimated: false, httpStatus: client.gone ? CLIENT_CLOSED : upstream.statusCode }
    : {
        // A success without usage (some compatible servers): estimated from the bounds and the response size.
        usage: { inputTokens: approxTokens(x.estimate.inputTokenBound), outputTokens: Math.min(x.estimate.outputTokenBound, approxTokens(raw.length)) },
        outcome: client.gone ? 'client_aborted' : 'ok',
        estimated: true,
        httpStatus: client.gone ? CLIENT_CLOSED : upstream.statusCode,
      };
  const outcome = await settlement.charge(charge);
  if (!client.gone) {
    x.res.writeHead(upstream.statusCode, {
      ...passedHeaders(upstream, x),
      'content-type': header(upstream, 'content-type') ?? 'application/json',
      'content-length': raw.length,
    });
    x.res.end(raw);
  }
  return outcome;
}

async function relayStream(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientState): Promise<UsageOutcome> {
  const stream = target.provider.streamMeter({ clientWantsUsage: x.request.clientWantsUsage });
  // Only an OpenAI stream whose client did not ask for usage needs rewriting (the forced usage chunk is hidden);
  // every other stream is written through chunk by chunk as it arrives and only read on the side.
  const filtering = target.provider.format === 'openai' && !x.request.clientWantsUsage;
  const splitter = new SseSplitter();
  const decoder = new StringDecoder('utf8');
  const res = x.res;
  res.writeHead(200, {
    ...passedHeaders(upstream, x),
    'content-type': header(upstream, 'content-type') ?? 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let broken: unknown = null;
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      const events = splitter.push(decoder.write(chunk));
      let out: string | Buffer = chunk;
      if (filtering) {
        out = '';
        for (const event of events) if (stream.observe(event)) out += `${event}\n\n`;
      } else for (const event of events) stream.observe(event);
      if (out.length > 0 && !res.write(out)) await drained(res);
    }
    const rest = splitter.rest() + decoder.end();
    if (rest.trim() && stream.observe(rest) && filtering) res.write(rest);
  } catch (err) {
    broken = err;
  }

  let charge: Charge;
  if (client.gone) charge = earlyEnd(x, stream, 'client_aborted', CLIENT_CLOSED);
  else if (broken || stream.failed) {
    // Output already reached the client: charge what it got. Before any output: nothing, like any upstream error.
    charge = stream.usage || stream.outputDeltas > 0
      ? earlyEnd(x, stream, 'upstream_error', 200)
      : { usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: 200 };
  } else charge = earlyEnd(x, stream, 'ok', 200);
  const outcome = await settlement.charge(charge);

  if (client.gone) return outcome;
  if (broken) {
    logUpstreamFailure(ctx, x, broken);
    res.write(target.provider.streamError(upstreamFailed(isUpstreamTimeout(broken)).message));
  }
  res.end();
  return outcome;
}

/**
 * An upstream 4xx passes through with its body (the client's request was wrong, or the provider rate-limited us);
 * 401/403 (the operator's provider credential) and 5xx become our 502, so no provider detail leaks. No charge.
 */
async function relayUpstreamError(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget): Promise<UsageOutcome> {
  const status = upstream.statusCode;
  let body: Buffer | null = null;
  try {
    body = await collect(upstream.body, MAX_ERROR_BODY_BYTES);
  } catch {
    // an unreadable error body is replaced by ours below
  }
  await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: status });
  if (status === 401 || status === 403) {
    ctx.logger.error({ provider: target.provider.name, status, demo: target.demo }, 'the upstream provider refused the configured credential');
    throw new ProxyError(502, 'upstream_error', 'The upstream provider refused ModelBridge’s credentials; the operator must check the provider API key. Nothing was charged.');
  }
  if (status >= 500 || !body) {
    ctx.logger.warn({ provider: target.provider.name, status, requestId: x.hold.requestId }, 'upstream error');
    throw upstreamFailed(false);
  }
  const headers: Record<string, string | number> = {
    ...passedHeaders(upstream, x),
    'content-type': header(upstream, 'content-type') ?? 'application/json',
    'content-length': body.length,
  };
  for (const name of ['retry-after', 'x-should-retry']) {
    const value = header(upstream, name);
    if (value) headers[name] = value;
  }
  x.res.writeHead(status, headers);
  x.res.end(body);
  return 'upstream_error';
}

/**
 * The charge for a request from what its stream showed: the provider's usage when it reported it (exact);
 * otherwise the input as reported at the start (Anthropic) or estimated from its bound, plus one token per output
 * delta received — flagged estimated. With no stream at all (an abort before the response), just the input.
 */
function earlyEnd(x: Exchange, stream: StreamMeter | null, outcome: UsageOutcome, httpStatus: number): Charge {
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

/**
 * Settles the hold once; a failure is logged and counted and the hold left for the release job. Until then it
 * keeps the hold alive (see MeteringService.extendHold), so only a request whose process died is ever released.
 */
class Settler {
  done = false;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly x: Exchange,
  ) {
    this.keepAlive = setInterval(() => {
      ctx.metering.extendHold(x.hold.requestId).catch((err: unknown) =>
        ctx.logger.warn({ requestId: x.hold.requestId, err: describeError(err) }, 'extending a hold failed'));
    }, Math.max(1_000, Math.floor(ctx.metering.holdTtlMs / 3)));
    this.keepAlive.unref();
  }

  async charge(c: Charge): Promise<UsageOutcome> {
    if (this.done) return c.outcome;
    this.done = true;
    clearInterval(this.keepAlive);
    const { ctx, x } = this;
    const end = ctx.metrics.meteringSeconds.startTimer({ phase: 'settle' });
    try {
      await ctx.metering.settle(x.hold, {
        inputTokens: c.usage.inputTokens,
        outputTokens: c.usage.outputTokens,
        costMicro: requestCost(x.model, c.usage.inputTokens, c.usage.outputTokens),
        outcome: c.outcome,
        estimated: c.estimated,
        httpStatus: c.httpStatus,
        latencyMs: performance.now() - x.startedAt,
      });
    } catch (err) {
      ctx.metrics.meteringErrors.inc();
      ctx.logger.error({ requestId: x.hold.requestId, keyId: x.hold.keyId, err: describeError(err) },
        'settlement failed after retries; the hold stays until the release job settles it');
    } finally {
      end();
    }
    return c.outcome;
  }
}

interface ClientState {
  gone: boolean;
}

/** Notices the client going away before the response is complete, and aborts the upstream request then. */
function watchClient(req: Request, res: Response, abort: AbortController): ClientState {
  const state: ClientState = { gone: req.socket.destroyed || res.destroyed };
  res.once('close', () => {
    if (res.writableFinished) return;
    state.gone = true;
    abort.abort();
  });
  return state;
}

function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

async function collect(body: AsyncIterable<Buffer>, limit = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error('upstream body too large');
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/**
 * Usage from a JSON response, looked for in its last 64 KB first (providers put `usage` at the end), decoded byte
 * for byte (usage is ASCII), so a large response is neither decoded nor parsed whole.
 */
function usageOfJson(target: UpstreamTarget, raw: Buffer): TokenUsage | null {
  const WINDOW = 64 * 1024;
  if (raw.length <= WINDOW) return target.provider.usageFromJson(raw.toString('latin1'));
  return target.provider.usageFromJson(raw.subarray(raw.length - WINDOW).toString('latin1')) ?? target.provider.usageFromJson(raw.toString('latin1'));
}

function header(upstream: UpstreamResponse, name: string): string | undefined {
  const value = upstream.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Response headers worth passing on: the provider's request id (for support tickets) and ours. */
function passedHeaders(upstream: UpstreamResponse, x: Exchange): Record<string, string> {
  const headers: Record<string, string> = { 'x-modelbridge-request-id': x.hold.requestId };
  for (const name of ['x-request-id', 'request-id']) {
    const value = header(upstream, name);
    if (value) headers[name] = value;
  }
  return headers;
}

function logUpstreamFailure(ctx: ProxyContext, x: Exchange, err: unknown): void {
  ctx.logger.warn({ requestId: x.hold.requestId, model: x.model.id, err: describeError(err) }, 'upstream request failed');
}
