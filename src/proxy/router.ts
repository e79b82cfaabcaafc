import { Router, type NextFunction, type Request, type Response } from 'express';
import type { AppDeps } from '../app-deps.js';
import type { ProxyContext } from './context.js';
import { countTokens } from './count-tokens.js';
import { ENDPOINTS } from './endpoints.js';
import { sendProxyError, unknownUrl } from './errors.js';
import { formatOf, getModel, keyStatus, listModels } from './info.js';
import { revokeOwnKey } from './self-revoke.js';
import { meteredHandler } from './pipeline.js';
import { storedResponse } from './stored-responses.js';
import { createUpstreamClient } from './upstreams/http.js';
import { createUpstreams } from './upstreams/index.js';

/**
 * The /v1 door: OpenAI- and Anthropic-compatible endpoints, authenticated by API key only (management tokens and
 * session cookies never work here), metered per request. No body parser is mounted: each endpoint reads its own
 * body with a size limit, and keeps the raw bytes to forward them unchanged when it can.
 */
export function createProxyRouter(deps: AppDeps): Router {
  const ctx: ProxyContext = {
    metering: deps.services.metering,
    models: deps.services.models,
    storedResponses: deps.services.storedResponses,
    refusals: deps.services.refusals,
    leaks: deps.services.leaks,
    upstreams: createUpstreams(deps.config),
    http: createUpstreamClient({ timeoutMs: deps.config.upstreamTimeoutMs }),
    metrics: deps.metrics,
    logger: deps.logger,
  };
  for (const provider of ctx.upstreams.demoProviders) {
    const variable = `${provider.toUpperCase()}_API_KEY`;
    if (deps.config[provider].baseUrl) deps.logger.warn({ provider }, `${provider.toUpperCase()}_BASE_URL is set but ${variable} is not: the demo upstream answers instead (set ${variable}, any value for a server without auth)`);
    else deps.logger.info({ provider }, `no ${variable}: ${provider} models are answered by the built-in demo upstream`);
  }

  const router = Router();
  router.post('/chat/completions', meteredHandler(ctx, ENDPOINTS.chat));
  router.post('/embeddings', meteredHandler(ctx, ENDPOINTS.embeddings));
  router.post('/messages', meteredHandler(ctx, ENDPOINTS.messages));
  router.post('/messages/count_tokens', countTokens(ctx));
  router.post('/responses', meteredHandler(ctx, ENDPOINTS.responses));
  router.post('/responses/compact', meteredHandler(ctx, ENDPOINTS.compact));
  router.get('/responses/:id', storedResponse(ctx, 'retrieve'));
  router.delete('/responses/:id', storedResponse(ctx, 'delete'));
  router.get('/responses/:id/input_items', storedResponse(ctx, 'inputItems'));
  router.get('/models', listModels(ctx));
  router.get('/models/*id', getModel(ctx));
  router.get('/key', keyStatus(ctx));
  router.post('/key/revoke', revokeOwnKey(ctx));
  router.use((req: Request, res: Response) => sendProxyError(res, formatOf(req), unknownUrl(req.method, req.originalUrl), ctx.logger));
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => sendProxyError(res, formatOf(req), err, ctx.logger));
  return router;
}
