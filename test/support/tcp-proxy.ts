import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server (MariaDB in the outage tests), to break the network between the app
 * and its database on purpose:
 * - `blackhole()`: stop forwarding in both directions, sockets stay open — what a dead switch or a partition looks
 *   like to the app: no error, no reset, just silence. New connections are accepted and go silent too. Bytes (and a
 *   closing side) sent meanwhile are held, and delivered by `restore()`, as TCP would once the network heals — so a
 *   query the app gave up on may still reach the server late;
 * - `restore()`: forward again;
 * - `killConnections()`: destroy every current socket pair (both sides see the connection reset), e.g. to cut the
 *   connection that carries a settlement; later connections are proxied normally;
 * - `cutWhen(match, when)`: once, reset the connection whose next packet to the server contains `match` — before
 *   forwarding it (the query never arrives) or after (it runs, its reply is lost);
 * - `close()`: stop listening and destroy everything.
 */
export interface TcpProxy {
  /** The port to connect to instead of the server's, on 127.0.0.1. */
  readonly port: number;
  /** Socket pairs open right now. */
  readonly connections: number;
  blackhole(): void;
  restore(): void;
  killConnections(): void;
  cutWhen(match: string, when: 'before' | 'after'): Promise<void>;
  close(): Promise<void>;
}

interface Pipe {
  from: net.Socket;
  to: net.Socket;
  held: Buffer[];
  ended: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let silent = false;
  let cut: { match: string; when: 'before' | 'after'; done: () => void } | null = null;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const pipes = new Set<Pipe>();
  /** Client-side sockets: what they send goes to the server. */
  const toServer = new WeakSet<net.Socket>();
  /** Server-side sockets whose replies are dropped (see cutWhen). */
  const muted = new WeakSet<net.Socket>();

  const flush = (p: Pipe) => {
    for (const chunk of p.held.splice(0)) p.to.write(chunk);
    if (p.ended) p.to.end();
  };
  const connect = (from: net.Socket, to: net.Socket) => {
    const p: Pipe = { from, to, held: [], ended: false };
    pipes.add(p);
    from.on('data', (chunk: Buffer) => {
      if (cut && from.remotePort !== undefined && toServer.has(from) && chunk.includes(cut.match)) {
        const { when, done } = cut;
        cut = null;
        if (when === 'after') {
          // The server gets the query and runs it; its reply never comes back.
          muted.add(to);
          to.write(chunk, () => setTimeout(() => (from.resetAndDestroy(), to.resetAndDestroy(), done()), 50));
        } else (from.resetAndDestroy(), to.resetAndDestroy(), done());
        return;
      }
      if (muted.has(from)) return;
      if (silent || p.held.length) p.held.push(chunk);
      else to.write(chunk);
    });
    from.on('end', () => {
      p.ended = true;
      if (!silent) flush(p);
    });
    from.on('close', () => pipes.delete(p));
  };

  // Half-open allowed: a side's FIN is forwarded like its bytes (held while silent), not answered by node itself.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    toServer.add(client);
    pairs.add(pair);
    connect(client, upstream);
    connect(upstream, client);
    // An error on one side (a reset, the server going away) resets the other.
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    const forget = () => client.destroyed && upstream.destroyed && pairs.delete(pair);
    for (const socket of pair) socket.on('error', drop).on('close', forget);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('tcp proxy: no port');

  const killConnections = () => {
    for (const [a, b] of pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    pairs.clear();
    pipes.clear();
  };
  return {
    port: address.port,
    get connections() {
      return pairs.size;
    },
    blackhole() {
      silent = true;
    },
    restore() {
      silent = false;
      for (const p of pipes) flush(p);
    },
    killConnections,
    cutWhen(match, when) {
      return new Promise<void>((done) => (cut = { match, when, done }));
    },
    async close() {
      killConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
