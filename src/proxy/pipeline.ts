import type { IncomingHttpHeaders } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { isDatabaseUnavailable } from '../db/errors.js';
import { MeteringRefusal } from '../domain/billing/refusal.js';
import type { Hold, KeyIdentity } from '../domain/billing/metering.service.js';
import { newId } from '../domain/ids.js';
import { CatalogEntryChanged, type CatalogModel } from '../domain/models/models.service.js';
import { identifyKey, readApiKey } from './authenticate.js';
import { readJsonBody } from './body.js';
import type { ProxyContext } from './context.js';
import { ENDPOINT_OF_PROVIDER, type EndpointSpec, type MeteredRequest } from './endpoints.js';
import { invalidRequest, modelNotFound, ProxyError, rateLimitHeaders, responseNotFound, sendProxyError } from './errors.js';
import { DEFAULT_OUTPUT_BOUND, estimateRequest, type Estimate } from './estimate.js';
import type { Translation } from './exchange.js';
import { forward } from './forward.js';
import { translatorFor } from './translate/index.js';
import { PROVIDERS } from './upstreams/index.js';

/**
 * A metered /v1 endpoint, as its named steps: authenticate → check the protocol headers → read the body → resolve
 * model → translate (when the model's provider speaks another format) → estimate → admit → forward (which settles). Every refusal on the way is thrown and answered in one
 * place, sendProxyError.
 */
export function meteredHandler(ctx: ProxyContext, endpoint: EndpointSpec): RequestHandler {
  return async function handleMetered(req: Request, res: Response): Promise<void> {
    const startedAt = performance.now();
    const refused: { keyId?: string; model?: unknown } = {};
    try {
      const secret = readApiKey(req);
      PROVIDERS[endpoint.provider].checkHeaders?.(req.headers);
      const keyLookup = identifyKey(ctx.metering, secret);
      const body = await readJsonBody(req, endpoint.maxBodyBytes);
      refused.model = body.json.model;
      const modelLookup = findModel(ctx, body.json.model);
      const key = await keyLookup;
      refused.keyId = key.id;
      const request = endpoint.parse(body.json);
      const storedContextTokens = await checkChain(ctx, key, request);
      const { model, translation, estimate, hold } = await admitFromCatalog(ctx, { key, endpoint, request, json: body.json, headers: req.headers, storedContextTokens }, await modelLookup);
      if (hold.rate) for (const [name, value] of Object.entries(rateLimitHeaders(hold.rate))) res.setHeader(name, value);
      const outcome = await forward(ctx, { req, res, endpoint, request, body, model, translation, estimate, hold, startedAt });
      ctx.metrics.proxyRequests.inc({ endpoint: endpoint.name, outcome });
    } catch (err) {
      ctx.metrics.proxyRequests.inc({ endpoint: endpoint.name, outcome: refusalLabel(err) });
      const { status, code } = sendProxyError(res, endpoint.format, err, ctx.logger);
      const keyId = refused.keyId ?? (err instanceof MeteringRefusal ? err.details.keyId : undefined);
      if (keyId) ctx.refusals.note({ keyId, status, code, model: typeof refused.model === 'string' ? refused.model : null });
    }
  };
}

/**
 * A request that chains on a stored response (previous_response_id) may name only one its key's own account created
 * through ModelBridge: the operator's upstream account would serve any. Refused 404 before any hold otherwise.
 * Returns the context the stored response adds, for the estimate.
 */
async function checkChain(ctx: ProxyContext, key: KeyIdentity, request: MeteredRequest): Promise<number> {
  if (request.previousResponseId === undefined) return 0;
  const stored = await ctx.storedResponses.findFor(request.previousResponseId, key);
  if (!stored) throw responseNotFound(request.previousResponseId);
  return stored.contextTokens;
}

/** The catalog entry as this instance last saw it; admission checks it is still the catalog's (admitFromCatalog). */
function findModel(ctx: ProxyContext, id: unknown): Promise<CatalogModel | null> {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) return Promise.resolve(null);
  const lookup = ctx.models.recall(id);
  lookup.catch(() => undefined); // awaited after the key; see identifyKey
  return lookup;
}

/**
 * Resolve model → translate → estimate → admit. The entry may be remembered from an earlier request: admission compares it with
 * the catalog in its transaction, and when an admin changed it meanwhile (price, cap, enabled) the request is
 * resolved and estimated again from the catalog as it is now. No refusal rests on a remembered entry alone.
 */
async function admitFromCatalog(
  ctx: ProxyContext,
  r: { key: KeyIdentity; endpoint: EndpointSpec; request: MeteredRequest; json: Record<string, unknown>; headers: IncomingHttpHeaders; storedContextTokens: number },
  remembered: CatalogModel | null,
): Promise<{ model: CatalogModel; translation: Translation | null; estimate: Estimate; hold: Hold }> {
  let entry = remembered;
  for (let attempt = 1; ; attempt++) {
    let model: CatalogModel;
    try {
      model = resolveModel(entry, r.request, r.endpoint);
    } catch (err) {
      // Refused on an entry that may be remembered (only enabled ones are): judge it again on the catalog as it is,
      // in case it was moved to the other provider meanwhile.
      if (attempt > 1 || !entry?.enabled) throw err;
      entry = await ctx.models.lookup(entry.id);
      continue;
    }
    const translation = translateRequest(r.endpoint, model, r.json, r.headers);
    // A translated request is estimated as it goes upstream: its body, its output cap, the upstream's prices.
    const estimate = translation
      ? estimateRequest(model, { ...r.request, maxOutputTokens: translation.maxOutputTokens, choices: 1 }, translation.body)
      : estimateRequest(model, r.request, r.json, r.storedContextTokens);
    try {
      return { model, translation, estimate, hold: await admit(ctx, { key: r.key, model, endpoint: r.endpoint, request: r.request, estimate }) };
    } catch (err) {
      if (!(err instanceof CatalogEntryChanged) || attempt >= 3) throw err;
      entry = await ctx.models.lookup(model.id);
    }
  }
}

/** The catalog model, enabled, of this endpoint's provider or of one whose format this endpoint is translated to. */
export function resolveModel(model: CatalogModel | null, request: MeteredRequest, endpoint: EndpointSpec): CatalogModel {
  if (!model || !model.enabled) throw modelNotFound(request.model);
  if (model.provider !== endpoint.provider && !translatorFor(endpoint.name, model.provider))
    throw invalidRequest(`The model '${model.id}' is served in the ${model.provider} format: send it to ${ENDPOINT_OF_PROVIDER[model.provider]}.`);
  return model;
}

/**
 * The upstream's request, when the model's provider speaks another format than the endpoint (null: the client's body
 * goes upstream as it is). A parameter that cannot be translated is refused here, before admission: nothing is held
 * or charged, and the upstream is never called.
 */
function translateRequest(endpoint: EndpointSpec, model: CatalogModel, json: Record<string, unknown>, headers: IncomingHttpHeaders): Translation | null {
  if (model.provider === endpoint.provider) return null;
  const translator = translatorFor(endpoint.name, model.provider)!;
  // The upstream's protocol headers a client may send (anthropic-beta from an OpenAI client) are checked as the
  // upstream's own endpoint checks them.
  PROVIDERS[model.provider].checkHeaders?.(headers);
  // Anthropic requires an output cap: the catalog's (or the default bound the estimate uses for a model without one).
  const { body, maxOutputTokens } = translator.request(json, { defaultMaxTokens: model.maxOutputTokens > 0 ? model.maxOutputTokens : DEFAULT_OUTPUT_BOUND });
  return { translator, body, maxOutputTokens };
}

async function admit(
  ctx: ProxyContext,
  a: { key: KeyIdentity; model: CatalogModel; endpoint: EndpointSpec; request: MeteredRequest; estimate: Estimate },
): Promise<Hold> {
  const end = ctx.metrics.meteringSeconds.startTimer({ phase: 'admit' });
  try {
    return await ctx.metering.admit({
      requestId: newId(),
      keyId: a.key.id,
      ownerId: a.key.ownerId,
      teamId: a.key.teamId,
      estimateMicro: a.estimate.costMicro,
      estimatedTokens: a.estimate.inputTokenBound + a.estimate.outputTokenBound,
      unbounded: a.estimate.unbounded,
      model: a.model.id,
      provider: a.model.provider,
      endpoint: a.endpoint.path,
      streamed: a.request.stream,
      catalog: a.model,
    });
  } finally {
    end();
  }
}

function refusalLabel(err: unknown): string {
  if (isDatabaseUnavailable(err)) return 'service_unavailable';
  if (err instanceof MeteringRefusal) return err.reason;
  if (err instanceof ProxyError) return err.code;
  return 'internal_error';
}
