import type { UsageOutcome } from '../domain/billing/metering.service.js';
import { upstreamModelFor } from '../domain/models/models.service.js';
import type { ProxyContext } from './context.js';
import { upstreamFailed } from './errors.js';
import { CLIENT_CLOSED, earlyEnd, logUpstreamFailure, NOTHING, watchClient, type Exchange } from './exchange.js';
import { relayJson, relayUpstreamError } from './relay-json.js';
import { relayStream } from './relay-stream.js';
import { Settler } from './settler.js';
import { isUpstreamTimeout, type UpstreamResponse, type UpstreamTarget } from './upstreams/http.js';
import type { MeteredEndpointName } from './upstreams/types.js';

export type { Exchange } from './exchange.js';

/**
 * Forwards an admitted request and settles it exactly once, whatever happens:
 * - upstream unreachable, timed out or failing before any output: nothing charged (upstream_error);
 * - client gone: the upstream request is aborted and what was consumed is charged, estimated from above
 *   (client_aborted) — unless the upstream of a stream had finished generating: then it is read on for its usage;
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
      upstream = await ctx.http.send(target, upstreamEndpoint(x), { body: upstreamBody(x, target), clientHeaders: x.req.headers, signal: abort.signal });
    } catch (err) {
      if (client.gone) return await settlement.charge(await earlyEnd(x, null, 'client_aborted', CLIENT_CLOSED));
      await settlement.charge({ usage: NOTHING, outcome: 'upstream_error', estimated: false, httpStatus: isUpstreamTimeout(err) ? 504 : 502 });
      logUpstreamFailure(ctx.logger, x, err);
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

/** The upstream endpoint: the client's, or the one its request was translated for. */
function upstreamEndpoint(x: Exchange): MeteredEndpointName {
  return x.translation?.translator.upstreamEndpoint ?? x.endpoint.name;
}

/**
 * The client's body, as received unless metering needs a change (stream usage, the upstream's model name); a
 * translated request's body as translated.
 */
function upstreamBody(x: Exchange, target: UpstreamTarget): string | Buffer {
  const body = x.translation?.body ?? x.body.json;
  let changed = target.provider.adaptBody(upstreamEndpoint(x), body) || x.translation !== null;
  const upstreamModel = upstreamModelFor(x.model, x.request.model);
  if (body.model !== upstreamModel) {
    body.model = upstreamModel;
    changed = true;
  }
  return changed ? JSON.stringify(body) : x.body.raw;
}
