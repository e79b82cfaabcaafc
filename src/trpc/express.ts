import { TRPCError } from '@trpc/server';
import { createExpressMiddleware } from '@trpc/server/adapters/express';
import { Router } from 'express';
import type { AppDeps } from '../app-deps.js';
import { createContext } from './context.js';
import { logUnexpected, toTrpcError, UNAVAILABLE_RETRY_AFTER_SECONDS } from './errors.js';
import { appRouter } from './router.js';

/** Inputs are small JSON objects; anything bigger than this is refused with 413 before it is parsed. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Mounted at /trpc by app.ts. */
export function createTrpcHandler(deps: AppDeps): Router {
  const handler = Router();
  handler.use(
    createExpressMiddleware({
      router: appRouter,
      // The context reads the caller's token or session, before any middleware runs: its errors are mapped here by
      // the same function (a silent database → 503, not 500).
      createContext: ({ req, res }) =>
        createContext(deps, req, res).catch((cause: unknown) => Promise.reject(toTrpcError(new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause })))),
      maxBodySize: MAX_BODY_BYTES,
      onError: ({ error, path }) => logUnexpected(deps.logger, error, path),
      responseMeta: ({ errors }) => ({
        headers: {
          // Create and rotate responses carry a secret: no cache anywhere may keep any response of this API.
          'cache-control': 'no-store',
          ...(errors.some((e) => e.code === 'UNAUTHORIZED') && { 'www-authenticate': 'Bearer realm="modelbridge"' }),
          ...(errors.some((e) => e.code === 'SERVICE_UNAVAILABLE') && { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) }),
        },
      }),
    }),
  );
  return handler;
}
