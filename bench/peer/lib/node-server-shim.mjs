// Stand-in for @hono/node-server, seen only by the gateway bundle (see
// hooks.mjs). Re-exports the real module unchanged except `serve`, which
// listens on the address chosen by ../start.mjs (127.0.0.1 and the caller's
// port) whatever the gateway asked for, and reports when it is listening.
import * as real from '@hono/node-server';

export * from '@hono/node-server';

export function serve(options, listeningListener) {
  const listen = globalThis.__modelbridgePeerListen;
  if (!listen) throw new Error('node-server-shim: start.mjs did not set the listen address');
  const server = real.serve(
    { ...options, hostname: listen.hostname, port: listen.port },
    (info) => {
      if (listeningListener) listeningListener(info);
      listen.onListening(info);
    },
  );
  server.on('error', listen.onError);
  return server;
}
