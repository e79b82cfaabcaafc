import express from 'express';
import type { AppDeps } from './app-deps.js';
import { createMisdirectedApiRouter } from './proxy/misdirected.js';
import { createProxyRouter } from './proxy/router.js';
import { createDemoUpstreamRouter } from './proxy/upstreams/demo/index.js';
import { createTrpcHandler } from './trpc/express.js';
import { createPortalRouter } from './portal/router.js';
import { createOpsRouter } from './ops/router.js';
import { createSecretScanningRouter } from './scanning/router.js';

/**
 * The HTTP app: middleware order and mounts, nothing else. Each door brings its own body parsing, auth and error
 * format, because they differ: the proxy speaks OpenAI/Anthropic errors, tRPC its own envelope, the portal HTML.
 */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Whose X-Forwarded-For to believe (req.ip, the login throttle, /metrics access, audit rows): TRUST_PROXY.
  app.set('trust proxy', deps.config.trustProxy);
  app.set('etag', false);
  // The proxy first: it carries nearly all the traffic, so it should not walk other routers' routes.
  app.use('/v1', createProxyRouter(deps));
  // Signed reports of leaked keys from secret scanning services: no cookie, no Origin, so before the portal's checks.
  app.use(createSecretScanningRouter(deps));
  // API paths without /v1 (a base URL missing it) get a JSON 404 that says so, not the portal's pages or CSRF 403.
  app.use(createMisdirectedApiRouter(deps));
  app.use(createOpsRouter(deps));
  // The built-in demo upstream (reached only by the proxy itself, over HTTP): see src/proxy/upstreams/demo.
  app.use('/demo', createDemoUpstreamRouter(deps.config.demoToken));
  app.use('/trpc', createTrpcHandler(deps));
  app.use(createPortalRouter(deps));
  return app;
}
