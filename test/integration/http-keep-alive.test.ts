import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEEP_ALIVE_TIMEOUT_MS } from '../../src/main.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';

// An idle keep-alive connection must outlive the clients' own idle timeouts (undici 4 s, load balancers 60 s): a
// server that closes it first (Node's default is 5 s) races a POST the client is sending on it → ECONNRESET.
describe(`keep-alive connections (${dialect})`, () => {
  let app: TestApp;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  beforeAll(async () => void (app = await startTestApp()));
  afterAll(async () => {
    agent.destroy();
    await app?.close();
  });

  const get = (path: string) =>
    new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const req = http.get(`${app.url}${path}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
      });
      req.on('error', reject);
    });

  it('keeps an idle connection open past Node’s 5 s default, and says how long in Keep-Alive', async () => {
    expect(KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(60_000);
    expect((await get('/healthz')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await get('/healthz')).toEqual({ status: 200, reused: true });
  }, 20_000);
});
