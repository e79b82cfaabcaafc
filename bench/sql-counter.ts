// A counting TCP relay in front of MariaDB for the agent load (bench/agents.ts), in its own process: ModelBridge
// connects through it, so the round trips, statements and commits of that one instance are counted exactly,
// whatever else the (shared) database server is doing (bench/mysql-commands.ts reads the client's bytes). Bytes are
// passed through untouched.
// argv[2]: JSON {host, port}. IPC: sends {type: 'ready', port}; answers 'counts' with {type: 'counts', counts}.
import net from 'node:net';
import { commandCounter } from './mysql-commands.js';

const { host, port } = JSON.parse(process.argv[2] ?? '{}') as { host: string; port: number };
const counts: Record<string, number> = { commands: 0, statements: 0 };

const server = net.createServer((client) => {
  const upstream = net.connect(port, host);
  const read = commandCounter(counts);
  client.on('data', (d: Buffer) => {
    read(d);
    upstream.write(d);
  });
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.setNoDelay(true);
  upstream.setNoDelay(true);
});
server.listen(0, '127.0.0.1', () => process.send?.({ type: 'ready', port: (server.address() as net.AddressInfo).port }));
process.on('message', (message: unknown) => {
  if (message === 'counts') process.send?.({ type: 'counts', counts: { ...counts } });
});
process.on('disconnect', () => process.exit(0));
