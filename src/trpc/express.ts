import { createExpressMiddleware } from '@trpc/server/adapters/express';
import { Router } from 'express';
import type { AppDeps } from '../app-deps.js';
import { createContext } from './context.js';
import { logUnexpected } from './errors.js';
import { appRouter } from './router.js';

/** Inputs are small JSON objects; anything bigger than this is refused with 413 before it is parsed. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Mounted at /trpc by app.ts. */
export function createTrpcHandler(deps: AppDeps): Router {
  const handler = Router();
  handler.use(
    createExpressMiddleware({
      router: appRouter,
      createContext: ({ req, res }) => createContext(deps, req, res),
      maxBodySize: MAX_BODY_BYTES,
      onError: ({ error, path }) => logUnexpected(deps.logger, error, path),
      responseMeta: ({ errors }) => ({
        headers: {
          // Create and rotate responses carry a secret: no cache anywhere may keep any response of this API.
          'cache-control': 'no-store',
          ...(errors.some((e) => e.code === 'UNAUTHORIZED') && { 'www-authenticate': 'Bearer realm="modelbridge"' }),
        },
      }),
    }),
  );
  return handler;
}
