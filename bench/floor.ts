// The floor ModelBridge's added latency is measured against (issue #19), in its own process, driven over IPC like
// bench/fake-server.ts: it sends {port} when listening. Two pass-throughs to the same fake upstream:
// - bare: node:http in, undici out, the body relayed as it comes; no database;
// - durable: the same, plus the least a durable admission and a durable settlement can cost on this database —
//   one autocommitted conditional UPDATE (a hold within the limit) before forwarding, and one transaction of an
//   INSERT (the usage event) and an UPDATE (hold → spend) in a single round trip before the answer ends.
// Input: JSON {mode: 'bare' | 'durable', upstream, databaseUrl}. The durable floor's two tables live in the bench
// database beside ModelBridge's (created here, dropped with it).
import http from 'node:http';
import mysql from 'mysql2/promise';
import { Agent, request } from 'undici';

interface Spec {
  mode: 'bare' | 'durable';
  upstream: string;
  databaseUrl: string;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
const HOLD = 1000;
const COST = 400;

const pool = spec.mode === 'durable' ? mysql.createPool({ uri: spec.databaseUrl, connectionLimit: 4, multipleStatements: true }) : null;
if (pool) {
  await pool.query(
    'CREATE TABLE IF NOT EXISTS floor_keys (id INT PRIMARY KEY, spend BIGINT NOT NULL, held BIGINT NOT NULL, limit_micro BIGINT NOT NULL) ENGINE=InnoDB;' +
      'CREATE TABLE IF NOT EXISTS floor_events (id BIGINT AUTO_INCREMENT PRIMARY KEY, key_id INT NOT NULL, cost BIGINT NOT NULL, created_at DATETIME(3) NOT NULL) ENGINE=InnoDB;' +
      'REPLACE INTO floor_keys VALUES (1, 0, 0, 9000000000000000000);',
  );
}

/** The admission: one durable statement that holds within the limit or refuses. */
async function admit(): Promise<boolean> {
  const [r] = await pool!.execute<mysql.ResultSetHeader>('UPDATE floor_keys SET held = held + ? WHERE id = 1 AND spend + held + ? <= limit_micro', [HOLD, HOLD]);
  return r.affectedRows === 1;
}

/** The settlement: the usage event and hold → spend, committed together in one round trip. */
async function settle(): Promise<void> {
  await pool!.query(
    'START TRANSACTION; INSERT INTO floor_events (key_id, cost, created_at) VALUES (1, ?, NOW(3)); UPDATE floor_keys SET held = held - ?, spend = spend + ? WHERE id = 1; COMMIT;',
    [COST, HOLD, COST],
  );
}

const server = http.createServer(async (req, res) => {
  try {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (pool && !(await admit())) {
      res.writeHead(429).end();
      return;
    }
    const upstream = await request(`${spec.upstream}${req.url}`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
      body: Buffer.concat(chunks),
    });
    const type = String(upstream.headers['content-type'] ?? 'application/json');
    res.writeHead(upstream.statusCode, { 'content-type': type });
    if (type.startsWith('text/event-stream')) {
      // A stream is relayed as it comes, and settled before its end, as ModelBridge's are.
      for await (const c of upstream.body) res.write(c);
      if (pool) await settle();
      res.end();
    } else {
      // A JSON answer is settled before it is sent.
      const body = Buffer.from(await upstream.body.arrayBuffer());
      if (pool) await settle();
      res.end(body);
    }
  } catch (err) {
    if (!res.headersSent) res.writeHead(502);
    res.end(String(err));
  }
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
process.on('disconnect', () => {
  server.close();
  void pool?.end();
  process.exit(0);
});
