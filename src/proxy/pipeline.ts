import type { Request, RequestHandler, Response } from 'express';
import { MeteringRefusal } from '../domain/billing/refusal.js';
import type { Hold } from '../domain/billing/metering.service.js';
import { newId } from '../domain/ids.js';
import type { ApiKey } from '../domain/keys/key.js';
import type { CatalogModel } from '../domain/models/models.service.js';
import { lookUpKey, readApiKey } from './authenticate.js';
import { readJsonBody } from './body.js';
import type { ProxyContext } from './context.js';
import { ENDPOINT_OF_PROVIDER, type EndpointSpec, type MeteredRequest } from './endpoints.js';
import { invalidRequest, modelNotFound, ProxyError, sendProxyError } from './errors.js';
import { estimateRequest, type Estimate } from './estimate.js';
import { forward } from './forward.js';

/**
 * A metered /v1 endpoint, as its named steps: authenticate → resolve model → estimate → admit → forward (which
 * settles). Every refusal on the way is thrown and answered in one place, sendProxyError.
 */
export function meteredHandler(ctx: ProxyContext, endpoint: EndpointSpec): RequestHandler {
  return async function handleMetered(req: Request, res: Response): Promise<void> {
    const startedAt = performance.now();
    try {
      const secret = readApiKey(req);
      const keyLookup = lookUpKey(ctx.metering, secret);
      const body = await readJsonBody(req);
      const modelLookup = findModel(ctx, body.json.model);
      const key = await keyLookup;
      const request = endpoint.parse(body.json);
      const model = resolveModel(await modelLookup, request, endpoint);
      const estimate = estimateRequest(model, request, body.json);
      const hold = await admit(ctx, { key, model, endpoint, request, estimate });
      const outcome = await forward(ctx, { req, res, endpoint, request, body, model, estimate, hold, startedAt });
      ctx.metrics.proxyRequests.inc({ endpoint: endpoint.name, outcome });
    } catch (err) {
      ctx.metrics.proxyRequests.inc({ endpoint: endpoint.name, outcome: refusalLabel(err) });
      sendProxyError(res, endpoint.format, err, ctx.logger);
    }
  };
}

function findModel(ctx: ProxyContext, id: unknown): Promise<CatalogModel | null> {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) return Promise.resolve(null);
  const lookup = ctx.models.lookup(id);
  lookup.catch(() => undefined); // awaited after the key; see lookUpKey
  return lookup;
}

/** The catalog model, enabled, of this endpoint's provider (formats are not translated). */
export function resolveModel(model: CatalogModel | null, request: MeteredRequest, endpoint: EndpointSpec): CatalogModel {
  if (!model || !model.enabled) throw modelNotFound(request.model);
  if (model.provider !== endpoint.provider)
    throw invalidRequest(`The model '${model.id}' is served in the ${model.provider} format: send it to ${ENDPOINT_OF_PROVIDER[model.provider]}.`);
  return model;
}

async function admit(
  ctx: ProxyContext,
  a: { key: ApiKey; model: CatalogModel; endpoint: EndpointSpec; request: MeteredRequest; estimate: Estimate },
): Promise<Hold> {
  const end = ctx.metrics.meteringSeconds.startTimer({ phase: 'admit' });
  try {
    return await ctx.metering.admit({
      requestId: newId(),
      keyId: a.key.id,
      ownerId: a.key.ownerId,
      teamId: a.key.teamId,
      estimateMicro: a.estimate.costMicro,
      model: a.model.id,
      provider: a.model.provider,
      endpoint: a.endpoint.path,
      streamed: a.request.stream,
    });
  } finally {
    end();
  }
}

function refusalLabel(err: unknown): string {
  if (err instanceof MeteringRefusal) return err.reason;
  if (err instanceof ProxyError) return err.code;
  return 'internal_error';
}
