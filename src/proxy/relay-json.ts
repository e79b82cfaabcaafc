import type { UsageOutcome } from '../domain/billing/metering.service.js';
import type { ProxyContext } from './context.js';
import { upstreamFailed } from './errors.js';
import { CLIENT_CLOSED, collect, earlyEnd, header, logUpstreamFailure, MAX_ERROR_BODY_BYTES, NOTHING, passedHeaders, type Charge, type ClientWatch, type Exchange } from './exchange.js';
import type { Settler } from './settler.js';
import type { Translator } from './translate/index.js';
import { passedErrorHeaders, upstreamErrorAnswer } from './upstream-errors.js';
import { isUpstreamTimeout, type UpstreamResponse, type UpstreamTarget } from './upstreams/http.js';
import type { TokenUsage } from './upstreams/types.js';

/** A non-streaming answer: read whole (it is small, and usage comes last), settled, then sent. */
export async function relayJson(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget, client: ClientWatch): Promise<UsageOutcome> {
  let raw: Buffer;
  try {
    raw = await collect(upstream.body);
  } catch (err) {
    if (client.gone) return settlement.charge(await earlyEnd(x, null, 'client_aborted', CLIENT_CLOSED));
    await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: isUpstreamTimeout(err) ? 504 : 502 });
    logUpstreamFailure(ctx.logger, x, err);
    throw upstreamFailed(isUpstreamTimeout(err));
  }
  const reported = usageOfJson(target, raw);
  const charge: Charge = reported
    ? { usage: reported, outcome: client.gone ? 'client_aborted' : 'ok', estimated: false, httpStatus: client.gone ? CLIENT_CLOSED : upstream.statusCode }
    : {
        // A success without usage (some compatible servers), estimated never below the real usage: the whole input
        // bound, and the response's bytes (a token covers at least one) up to the output bound.
        usage: { ...NOTHING, inputTokens: x.estimate.inputTokenBound, outputTokens: Math.min(x.estimate.outputTokenBound, raw.length) },
        outcome: client.gone ? 'client_aborted' : 'ok',
        estimated: true,
        httpStatus: client.gone ? CLIENT_CLOSED : upstream.statusCode,
      };
  charge.responseId = x.endpoint.responseIdOfJson?.(raw.toString('utf8')) ?? null;
  const outcome = await settlement.charge(charge);
  if (!client.gone) {
    const answer = x.translation ? translatedJson(x.translation.translator, raw) : raw;
    x.res.writeHead(upstream.statusCode, {
      ...passedHeaders(upstream, x),
      'content-type': x.translation ? 'application/json' : (header(upstream, 'content-type') ?? 'application/json'),
      'content-length': answer.length,
    });
    x.res.end(answer);
  }
  return outcome;
}

/**
 * An upstream answer in the client's format. It was charged by the upstream's usage already: an answer that is not
 * JSON (never from the providers) is our 502, the charge stands (the provider billed it).
 */
function translatedJson(translator: Translator, raw: Buffer): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw upstreamFailed(false);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw upstreamFailed(false);
  return Buffer.from(JSON.stringify(translator.response(json as Record<string, unknown>)));
}

/**
 * An upstream error status, answered as upstreamErrorAnswer decides: a 4xx passes through with its body (the
 * client's request was wrong, or the provider rate-limited us); overloaded (503, 529) keeps its status; the rest
 * is our 502. Nothing is charged.
 */
export async function relayUpstreamError(ctx: ProxyContext, x: Exchange, settlement: Settler, upstream: UpstreamResponse, target: UpstreamTarget): Promise<UsageOutcome> {
  const status = upstream.statusCode;
  let body: Buffer | null = null;
  try {
    body = await collect(upstream.body, MAX_ERROR_BODY_BYTES);
  } catch {
    // an unreadable error body is replaced by ours (upstreamErrorAnswer)
  }
  await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: status });
  const answer = upstreamErrorAnswer(upstream, body);
  if (status === 401 || status === 403) {
    ctx.logger.error({ provider: target.provider.name, status, demo: target.demo }, 'the upstream provider refused the configured credential');
  } else if (status >= 500) {
    ctx.logger.warn({ provider: target.provider.name, status, requestId: x.hold.requestId }, 'upstream error');
  }
  if (answer || !body) throw answer ?? upstreamFailed(false);
  // A translated request's error speaks the client's format: its message as the provider wrote it.
  if (x.translation) body = Buffer.from(JSON.stringify(x.translation.translator.error(status, body)));
  x.res.writeHead(status, {
    ...passedHeaders(upstream, x),
    ...passedErrorHeaders(upstream),
    'content-type': x.translation ? 'application/json' : (header(upstream, 'content-type') ?? 'application/json'),
    'content-length': body.length,
  });
  x.res.end(body);
  return 'upstream_error';
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

