import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  id: string;
  path: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  signatureOk: boolean;
  status: number;
}

/**
 * A webhook receiver on loopback that checks Standard Webhooks signatures with `secret` (set once the endpoint
 * exists), answers `failFirst` attempts of each webhook-id with 500, and then 200. `respond` overrides the answer.
 */
export async function startReceiver(options: { failFirst?: number } = {}) {
  const attempts = new Map<string, number>();
  const received: Received[] = [];
  const state = {
    secret: '',
    failFirst: options.failFirst ?? 0,
    respond: null as null | ((req: http.IncomingMessage, res: http.ServerResponse) => boolean),
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (state.respond?.(req, res)) return;
      const id = String(req.headers['webhook-id']);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const signatureOk = verify(state.secret, id, String(req.headers['webhook-timestamp']), raw, String(req.headers['webhook-signature']));
      const status = !signatureOk ? 401 : n <= state.failFirst ? 500 : 200;
      received.push({ id, path: req.url ?? '', body: JSON.parse(raw) as Received['body'], signatureOk, status });
      res.writeHead(status).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    state,
    received,
    /** Events accepted (200) per webhook-id. */
    accepted: () => received.filter((r) => r.status === 200),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The verification a receiver does (docs/webhooks.md shows the same in its snippet). */
function verify(secret: string, id: string, timestamp: string, body: string, header: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return header.split(' ').some((sig) => {
    const [version, value] = sig.split(',');
    const given = Buffer.from(value ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}
