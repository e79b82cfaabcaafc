// ESM resolve hook (registered by ../start.mjs through module.register).
//
// The published @portkey-ai/gateway package is a single bundled CLI script
// (build/start-server.js) that exports nothing: it builds its Hono app and
// calls `serve({ fetch, port })` from @hono/node-server at top level, with no
// way to choose the listen address. This hook hands that one import (and only
// when it comes from the gateway bundle) our shim instead, which forces the
// hostname to 127.0.0.1. Every other import resolves normally.
const SHIM_URL = new URL('./node-server-shim.mjs', import.meta.url).href;
const GATEWAY_ENTRY = '/@portkey-ai/gateway/build/start-server.js';

export async function resolve(specifier, context, nextResolve) {
  if (
    specifier === '@hono/node-server' &&
    typeof context.parentURL === 'string' &&
    context.parentURL.endsWith(GATEWAY_ENTRY)
  ) {
    return { url: SHIM_URL, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
