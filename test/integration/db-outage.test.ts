import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { createTestDb, onMysql, TEST_MYSQL_SERVER, type TestDb } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { bearer, sessionCookieFor, tokenFor } from '../support/trpc.js';

/** SPEC §5: "database unreachable → 503 service_unavailable with Retry-After, within 5 s". */
const BUDGET_MS = 5_000;

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  ms: number;
}

/**
 * The database behind a TCP proxy that goes silent (sockets open, no bytes either way: what a dead network looks
 * like), while the app keeps serving. MySQL only: SQLite is in-process.
 */
describe.skipIf(!onMysql)('a silent database (mysql)', () => {
  let proxy: TcpProxy;
  let t: TestDb;
  let fake: FakeUpstream;
  let app: TestApp;
  let secret: string;
  let keyId: string;
  let token: string;
  let cookie: string;
  /** Requests answered 200 by /v1: each must be charged exactly once. */
  let served = 0;

  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_MYSQL_SERVER);
    t = await createTestDb({ throughProxyPort: proxy.port });
    fake = await startFakeUpstream();
    app = await startTestApp({
      testDb: t,
      env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-a' },
    });
    const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    ({ secret, key: { id: keyId } } = await makeKey(app.services, owner));
    token = await tokenFor(app, owner);
    cookie = await sessionCookieFor(app, owner);
  });
  afterAll(async () => {
    proxy?.restore();
    await app?.close();
    await fake?.close();
    await t?.destroy();
    await proxy?.close();
  });

  /** One request, given up after the budget and a margin, so a hang fails the test instead of stalling it. */
  async function call(path: string, init: RequestInit = {}): Promise<Answer> {
    const started = performance.now();
    const res = await fetch(`${app.url}${path}`, { ...init, signal: AbortSignal.timeout(BUDGET_MS + 3_000) });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // an HTML page
    }
    return { status: res.status, headers: res.headers, body, ms: performance.now() - started };
  }
  const json = { 'content-type': 'application/json' };
  const doors = {
    openai: () => call('/v1/chat/completions', { method: 'POST', headers: { ...json, authorization: `Bearer ${secret}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }) }),
    anthropic: () => call('/v1/messages', { method: 'POST', headers: { ...json, 'x-api-key': secret, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] }) }),
    trpc: () => call('/trpc/keys.list', { headers: bearer(token) }),
    portal: () => call('/keys', { headers: { cookie } }),
  };
  async function allDoors(): Promise<Record<keyof typeof doors, Answer>> {
    const [openai, anthropic, trpc, portal] = await Promise.all([doors.openai(), doors.anthropic(), doors.trpc(), doors.portal()]);
    served += [openai, anthropic].filter((a) => a.status === 200).length;
    return { openai, anthropic, trpc, portal };
  }

  function expectUnavailable(answers: Record<keyof typeof doors, Answer>) {
    for (const [door, a] of Object.entries(answers)) {
      expect(a.status, `${door}: ${JSON.stringify(a.body).slice(0, 300)}`).toBe(503);
      expect(a.ms, `${door} answered after ${Math.round(a.ms)} ms`).toBeLessThan(BUDGET_MS);
      expect(Number(a.headers.get('retry-after')), `${door}: Retry-After`).toBeGreaterThan(0);
    }
    const { openai, anthropic, trpc, portal } = answers;
    expect(openai.body).toEqual({ error: { message: expect.any(String), type: expect.any(String), code: 'service_unavailable', param: null } });
    expect(openai.headers.get('x-should-retry')).toBe('true');
    expect(anthropic.body).toEqual({ type: 'error', error: { type: expect.stringMatching(/^(overloaded_error|api_error)$/), message: expect.any(String) } });
    expect(anthropic.headers.get('x-should-retry')).toBe('true');
    expect(trpc.body.error.data.code).toBe('SERVICE_UNAVAILABLE');
    expect(portal.headers.get('content-type')).toMatch(/text\/html/);
  }

  it('answers 503 with Retry-After within 5 s on every door while the database is silent, and recovers by itself', async () => {
    const before = await allDoors();
    expect(Object.values(before).map((a) => a.status)).toEqual([200, 200, 200, 200]);

    proxy.blackhole();
    // First round: the pools' idle connections look alive and stall. Second: new connections stall in the handshake.
    expectUnavailable(await allDoors());
    expectUnavailable(await allDoors());

    proxy.restore();
    await vi.waitFor(async () => expect((await allDoors()).openai.status).toBe(200), { timeout: 15_000, interval: 250 });
    const after = await allDoors();
    expect(Object.values(after).map((a) => a.status)).toEqual([200, 200, 200, 200]);
  }, 45_000);

  it('charged every served request exactly once and nothing for the refused ones', async () => {
    await expectMeteringInvariants(t.db);
    const events = await t.db('usage_events').where({ key_id: keyId });
    expect(events).toHaveLength(served);
    expect(new Set(events.map((e: { request_id: string }) => e.request_id)).size).toBe(served);
    expect(fake.served).toBe(served);
  });
});

/** SQLite is in-process: it is never silent, but another process can hold its write lock (`jobs:run`, a backup). */
describe.skipIf(onMysql)('a SQLite file another process holds the write lock of (sqlite)', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let secret: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o' } });
    const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    ({ secret } = await makeKey(app.services, owner));
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  async function chat(): Promise<{ status: number; headers: Headers; ms: number }> {
    const started = performance.now();
    const res = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }) });
    await res.text();
    return { status: res.status, headers: res.headers, ms: performance.now() - started };
  }

  it('answers 503 with Retry-After within 5 s while the lock is held, and serves again once it is released', async () => {
    expect((await chat()).status).toBe(200);
    const other = new Database(app.t.sqlitePath!);
    try {
      other.exec('BEGIN IMMEDIATE');
      const refused = await chat();
      expect(refused.status).toBe(503);
      expect(refused.ms).toBeLessThan(BUDGET_MS);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect((await chat()).status).toBe(200);
    await expectMeteringInvariants(app.t.db);
  });
});
