#!/usr/bin/env node
// Starts the Portkey open-source AI gateway (@portkey-ai/gateway) as a peer
// proxy for benchmarks, listening on 127.0.0.1 only.
//
//   node start.mjs <port>        (or --port=<port>, or PORT=<port> in the env)
//
// stdout carries exactly one line, `listening <port>`, once the server
// accepts connections; everything the gateway itself prints goes to stderr.
import { register } from 'node:module';

const HOSTNAME = '127.0.0.1';

function parsePort() {
  const args = process.argv.slice(2);
  const flag = args.find((a) => a.startsWith('--port='));
  const positional = args.find((a) => /^\d+$/.test(a));
  const raw = flag ? flag.slice('--port='.length) : positional ?? process.env.PORT;
  const port = Number(raw);
  if (!raw || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write('usage: node start.mjs <port>   (or --port=<port>, or PORT=<port>)\n');
    process.exit(2);
  }
  return port;
}

const port = parsePort();

// Keep the gateway off anything but the upstream named in each request:
// no Redis cache backend, no outbound proxy, no APM logger, and custom hosts
// on loopback allowed (the gateway's own default list, pinned here so an
// inherited environment cannot change it).
for (const name of [
  'REDIS_CONNECTION_STRING',
  'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy',
  'APM_LOGGER',
  'TLS_KEY_PATH', 'TLS_CERT_PATH', 'TLS_CA_PATH',
]) delete process.env[name];
process.env.TRUSTED_CUSTOM_HOSTS = 'localhost,127.0.0.1,::1';
delete process.env.PORT; // the gateway's own env parsing must not see it

// The gateway reads its port from argv (--port=N); --headless skips the
// bundled web UI and its /log/stream endpoint.
process.argv = [process.argv[0], process.argv[1], `--port=${port}`, '--headless'];

// Route everything written to stdout (the gateway's spinner, banner and
// console.clear) to stderr, keeping stdout for the readiness line.
const stdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
console.clear = () => {};

let resolveListening;
let rejectListening;
const listening = new Promise((resolve, reject) => {
  resolveListening = resolve;
  rejectListening = reject;
});
globalThis.__modelbridgePeerListen = {
  hostname: HOSTNAME,
  port,
  onListening: resolveListening,
  onError: (err) => {
    process.stderr.write(`peer gateway: cannot listen on ${HOSTNAME}:${port}: ${err.message}\n`);
    rejectListening(err);
    process.exit(1);
  },
};

register('./lib/hooks.mjs', import.meta.url);

// Importing the bundle runs it: it builds the app and calls serve().
await import('@portkey-ai/gateway/build/start-server.js');
const info = await listening;
if (info.address !== HOSTNAME) {
  process.stderr.write(`peer gateway: listening on ${info.address}, expected ${HOSTNAME}\n`);
  process.exit(1);
}
stdoutWrite(`listening ${info.port}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
