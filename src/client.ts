import { createTRPCClient, httpLink, type TRPCClient } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from './trpc/router.js';

/**
 * The typed client for ModelBridge's management API. Type-only imports from the server: a script that uses this
 * pulls in @trpc/client and nothing of the server at run time.
 *
 *   const mb = createModelBridgeClient({ url: 'https://modelbridge.example.com', token: process.env.MODELBRIDGE_TOKEN! });
 *   const { key, secret } = await mb.keys.create.mutate({ name: 'ci deploys', spendLimitAud: '25' });
 */
export type { AppRouter };
export type ModelBridgeInputs = inferRouterInputs<AppRouter>;
export type ModelBridgeOutputs = inferRouterOutputs<AppRouter>;
export type Key = ModelBridgeOutputs['keys']['get'];
export type ModelBridgeClient = TRPCClient<AppRouter>;

export interface ModelBridgeClientOptions {
  /** The installation's base URL (`https://modelbridge.example.com`); `/trpc` is added unless it is already there. */
  url: string;
  /** A management token (`mbm_…`), e.g. from `npm run cli -- token:create` or the portal's Tokens page. */
  token: string;
  /** A fetch implementation, if not the global one. */
  fetch?: typeof globalThis.fetch;
}

export function createModelBridgeClient(options: ModelBridgeClientOptions): ModelBridgeClient {
  const base = options.url.replace(/\/+$/, '');
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: base.endsWith('/trpc') ? base : `${base}/trpc`,
        headers: { authorization: `Bearer ${options.token}` },
        ...(options.fetch && { fetch: options.fetch }),
      }),
    ],
  });
}
