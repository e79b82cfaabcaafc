// A counting TCP relay in front of MariaDB for the agent load (bench/agents.ts), in its own process: ModelBridge
// connects through it, so the statements and commits of that one instance are counted exactly, whatever else the
// (shared) database server is doing. It reads only the client → server direction of the MySQL protocol: every
// packet with sequence id 0 starts a command (a round trip); a COM_QUERY (0x03) may hold several statements (the
// metering's one-round-trip batches), so its text is split at semicolons outside quotes and each statement is classed
// by its first keyword; COM_STMT_EXECUTE (0x17) counts as one "execute". Bytes are passed through untouched.
// argv[2]: JSON {host, port}. IPC: sends {type: 'ready', port}; answers 'counts' with {type: 'counts', counts}.
import net from 'node:net';

const { host, port } = JSON.parse(process.argv[2] ?? '{}') as { host: string; port: number };
const counts: Record<string, number> = { commands: 0, statements: 0 };
const bump = (name: string) => (counts[name] = (counts[name] ?? 0) + 1);
const KEYWORDS = new Set(['select', 'insert', 'update', 'delete', 'begin', 'commit', 'rollback', 'set']);

/** The statements of one query text: split at `;` outside '…', "…" and `…` (backslash escapes inside quotes). */
function statements(text: string): string[] {
  const out: string[] = [];
  let quote = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === ';') {
      out.push(text.slice(from, i));
      from = i + 1;
    }
  }
  out.push(text.slice(from));
  return out.filter((s) => s.trim() !== '');
}

function classify(payload: Buffer): void {
  bump('commands');
  const command = payload[0];
  if (command === 0x03) {
    for (const statement of statements(payload.subarray(1).toString('latin1'))) {
      bump('statements');
      const keyword = (/^\s*([A-Za-z]+)/.exec(statement)?.[1] ?? 'other').toLowerCase();
      bump(keyword === 'start' ? 'begin' : KEYWORDS.has(keyword) ? keyword : 'other');
    }
  } else if (command === 0x17) {
    bump('statements');
    bump('execute');
  } else if (command === 0x0e) bump('ping');
  else bump('other_command');
}

/** Splits the client's byte stream into packets (3-byte length, 1-byte sequence id) and counts the commands. */
function packetReader(): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const length = pending.readUIntLE(0, 3);
      if (pending.length < 4 + length) break;
      if (pending[3] === 0 && length > 0) classify(pending.subarray(4, 4 + length));
      pending = pending.subarray(4 + length);
    }
  };
}

const server = net.createServer((client) => {
  const upstream = net.connect(port, host);
  const read = packetReader();
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
