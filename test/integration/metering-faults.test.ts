import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { toMicro } from '../../src/domain/money.js';
import { createServices } from '../../src/domain/services.js';
import { systemClock } from '../../src/domain/clock.js';
import { releaseStaleHolds } from '../../src/domain/billing/stale-holds.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { createTestDb, onMysql, TEST_MYSQL_SERVER, type TestDb } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/**
 * Faults on the metering path, reproduced with real parts: a TCP proxy between the app and MariaDB that cuts the
 * connection carrying a settlement or an admission, and a real ModelBridge process killed with SIGKILL while its
 * requests are in flight. MySQL only (the TCP proxy stands in front of MariaDB).
 */
describe.runIf(onMysql)('metering through faults (mysql)', () => {
  const TTL_SECONDS = 2;
  let proxy: TcpProxy;
  let t: TestDb;
  let fake: FakeUpstream;
  let app: TestApp;

  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_MYSQL_SERVER);
    t = await createTestDb({ throughProxyPort: proxy.port });
    fake = await startFakeUpstream();
    app = await startTestApp({ testDb: t, env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', MODELBRIDGE_HOLD_TTL_SECONDS: String(TTL_SECONDS) } });
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
    await t?.destroy();
    await proxy?.close();
  });

  const chat = (i: number) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `question ${i}` }], max_tokens: 8 });
  const client = (secret: string) => new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
  /** Another instance on the same database: what runs the release job. */
  const otherInstance = () => createServices({ db: t.another(), clock: systemClock, timeZone: 'Australia/Sydney' });

  for (const when of ['before', 'after'] as const)
    it(`charges every served request once when the connection carrying a settlement batch is cut (${when} the server gets it)`, async () => {
      const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
      const { key, secret } = await makeKey(app.services, owner);
      await client(secret).chat.completions.create(chat(0)); // a first batch: the key's rows are remembered
      const retried = app.services.metering.settlements.retried;
      fake.setMode('slow');
      const cut = proxy.cutWhen('INSERT INTO usage_events', when);
      const answers = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => client(secret).chat.completions.create(chat(i + 1))));
      await cut;
      // Admissions that rode the cut batch were refused (503, nothing forwarded); every other client had its answer…
      const served = answers.filter((a) => a.status === 'fulfilled' && a.value.choices[0]?.message.content).length;
      const refused = answers.filter((a) => a.status === 'rejected');
      expect(refused.every((a) => (a as PromiseRejectedResult).reason.status === 503)).toBe(true);
      expect(served).toBeGreaterThan(30);
      expect(fake.served).toBe(1 + served);
      // …and every served request is charged, once, at the provider's usage: the failed batch was retried.
      await vi.waitFor(async () => expect(app.services.metering.settlements.pending).toBe(0), { timeout: 10_000 });
      const events = await t.db('usage_events').where({ key_id: key.id });
      expect(events).toHaveLength(1 + served);
      expect(events.every((e: Record<string, unknown>) => e.outcome === 'ok' && toMicro(e.cost_micro) > 0)).toBe(true);
      expect(app.services.metering.settlements.retried).toBeGreaterThan(retried);
      // Holds are left only by admissions that committed unanswered (after the server got them): the release job's.
      const left = await t.db('holds').where({ key_id: key.id });
      expect(left.length).toBeLessThanOrEqual(when === 'before' ? 0 : refused.length);
    });

  it('releases, within the TTL and a job run, the hold of an admission whose reply never reached the proxy', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    const { key, secret } = await makeKey(app.services, owner, { spendLimitMicro: 20_000 });
    const cut = proxy.cutWhen('INSERT INTO holds', 'after');
    const refused = await client(secret).chat.completions.create(chat(1)).catch((err: { status?: number }) => err);
    await cut;
    expect((refused as { status?: number }).status).toBe(503);
    // The admission committed: its hold is there, and nobody will settle it.
    await vi.waitFor(async () => expect(await t.db('holds').where({ key_id: key.id })).toHaveLength(1));
    const elsewhere = otherInstance();
    expect((await releaseStaleHolds(elsewhere.metering)).released).toBe(0); // not yet past its deadline
    await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 200));
    expect((await releaseStaleHolds(elsewhere.metering)).released).toBe(1);
    const row = await t.db('api_keys').where({ id: key.id }).first();
    expect([toMicro(row.held_micro), toMicro(row.spend_micro)]).toEqual([0, 0]);
    // The key's whole limit is usable again.
    expect((await client(secret).chat.completions.create(chat(2))).choices).toHaveLength(1);
  });

  it('never releases the holds of a live instance’s long requests, and releases a killed instance’s after the TTL', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    const { key: liveKey, secret: liveSecret } = await makeKey(app.services, owner);
    const { key: deadKey, secret: deadSecret } = await makeKey(app.services, owner);
    fake.setMode('hang');
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      detached: true,
      stdio: 'ignore',
      env: {
        ...process.env, DATABASE_URL: t.url, PORT: String(port), MODELBRIDGE_JOBS: '0', MODELBRIDGE_HOLD_TTL_SECONDS: String(TTL_SECONDS),
        OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', LOG_LEVEL: 'silent',
      },
    });
    try {
      await vi.waitFor(async () => expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200), { timeout: 20_000, interval: 200 });
      const stop = new AbortController();
      const inFlight = (base: string, secret: string) => Array.from({ length: 20 }, (_, i) =>
        new OpenAI({ apiKey: secret, baseURL: `${base}/v1`, maxRetries: 0 }).chat.completions.create({ ...chat(i), stream: true }, { signal: stop.signal }).catch(() => undefined));
      const pending = [...inFlight(app.url, liveSecret), ...inFlight(`http://127.0.0.1:${port}`, deadSecret)];
      await vi.waitFor(async () => expect(Number((await t.db('holds').count({ n: '*' }).first())?.n)).toBe(40), { timeout: 10_000 });
      killGroup(child);
      // Three TTLs later: the live instance renewed its holds all along, the killed one's ran out.
      await new Promise((resolve) => setTimeout(resolve, 3 * TTL_SECONDS * 1000));
      const released = await releaseStaleHolds(otherInstance().metering);
      expect(released).toMatchObject({ released: 20, failed: [] });
      expect(await t.db('holds').where({ key_id: deadKey.id })).toHaveLength(0);
      expect(await t.db('holds').where({ key_id: liveKey.id })).toHaveLength(20);
      const abandoned = await t.db('usage_events').where({ key_id: deadKey.id, outcome: 'abandoned' });
      expect(abandoned).toHaveLength(20);
      stop.abort();
      await Promise.all(pending);
      // Twenty aborted streams are settled one batch after another; on a loaded machine that takes more than a second.
      await vi.waitFor(async () => expect(await t.db('holds').where({ key_id: liveKey.id })).toHaveLength(0), { timeout: 15_000, interval: 100 });
      expect(await t.db('usage_events').where({ key_id: liveKey.id, outcome: 'client_aborted' })).toHaveLength(20);
    } finally {
      killGroup(child);
    }
  }, 60_000);
});

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject).listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
