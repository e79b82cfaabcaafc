import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/auth/secret-format.js';
import { ManualClock } from '../../src/domain/clock.js';
import { REFUSAL_FLUSH_MS, REFUSAL_SAMPLES_PER_KEY } from '../../src/domain/keys/refusals.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser, type TestUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { signIn } from '../support/portal.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };

describe(`refused requests per key, with a bounded write cost (${dialect})`, { timeout: 120_000 }, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let owner: TestUser;
  let writes: string[];

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({
      clock: new ManualClock('2026-11-26T06:00:00.000Z'),
      env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o' },
    });
    owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    writes = [];
    // Every statement that writes the refusal tables, on the app's own pool.
    app.services.db.on('query', (q: { sql: string }) => {
      if (/key_refusal/.test(q.sql) && !/^\s*select/i.test(q.sql)) writes.push(q.sql);
    });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  /**
   * The most writes `ms` of refusals may cost: a flush every REFUSAL_FLUSH_MS (plus the one a test calls), each
   * one upsert, one insert of samples and one trim for the one key — whatever the number of requests.
   */
  const bound = (ms: number) => 3 * (Math.ceil(ms / REFUSAL_FLUSH_MS) + 1);

  /** `n` requests with `secret`, 25 at a time, over real HTTP on loopback; returns the statuses. */
  async function hammer(secret: string, n: number, model = chat.model): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < n; i += 25) {
      const batch = Array.from({ length: Math.min(25, n - i) }, () =>
        fetch(`${app.url}/v1/chat/completions`, {
          method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ ...chat, model }),
        }).then(async (r) => (await r.arrayBuffer(), r.status)));
      statuses.push(...(await Promise.all(batch)));
    }
    return statuses;
  }

  it('a revoked key hammered 1000 times costs a constant handful of writes per flush, and keeps the last N samples', async () => {
    const { key, secret } = await makeKey(app.services, owner, { name: 'revoked' });
    await app.services.keys.revoke(key.id, owner.actor);
    writes.length = 0;
    const started = Date.now();
    const statuses = await hammer(secret, 1000);
    expect(new Set(statuses)).toEqual(new Set([401]));
    await app.services.refusals.flush();
    // Nothing is written per request: 1000 refusals cost the writes of the flushes, a few at most.
    expect(writes.length).toBeGreaterThanOrEqual(3);
    expect(writes.length).toBeLessThanOrEqual(bound(Date.now() - started));
    expect(await app.t.db('key_refusal_counts').where({ key_id: key.id })).toEqual([
      expect.objectContaining({ day: '2026-11-26', status: 401, code: 'key_revoked' }),
    ]);
    expect(Number((await app.t.db('key_refusal_counts').where({ key_id: key.id }).first()).refusals)).toBe(1000);
    expect(await app.t.db('key_refusal_samples').where({ key_id: key.id })).toHaveLength(REFUSAL_SAMPLES_PER_KEY);

    // A second burst adds to the same counter (an upsert), and samples stay bounded.
    writes.length = 0;
    const again = Date.now();
    await hammer(secret, 200);
    await app.services.refusals.flush();
    expect(writes.length).toBeLessThanOrEqual(bound(Date.now() - again));
    expect(Number((await app.t.db('key_refusal_counts').where({ key_id: key.id }).first()).refusals)).toBe(1200);
    expect(await app.t.db('key_refusal_samples').where({ key_id: key.id })).toHaveLength(REFUSAL_SAMPLES_PER_KEY);
  });

  it('a limit-reached key is counted per code and shown over tRPC (keys.refusals) and on the key page', async () => {
    const { key, secret } = await makeKey(app.services, owner, { name: 'capped', spendLimitMicro: 5 });
    const served = await hammer(secret, 1);
    expect(served).toEqual([200]);
    const statuses = await hammer(secret, 300);
    expect(new Set(statuses)).toEqual(new Set([429]));
    await hammer(secret, 3, 'no-such-model');

    const mb = await clientFor(app, owner);
    await app.services.refusals.flush();
    const after = await mb.keys.refusals.query({ id: key.id });
    expect(after.byDay).toEqual([
      { day: '2026-11-26', status: 404, code: 'model_not_found', refusals: 3 },
      { day: '2026-11-26', status: 429, code: 'spend_limit_reached', refusals: 300 },
    ]);
    expect(after.recent).toHaveLength(REFUSAL_SAMPLES_PER_KEY);
    expect(after.recent[0]).toEqual({ at: '2026-11-26T06:00:00.000Z', status: 404, code: 'model_not_found', model: 'no-such-model' });
    expect(after.recent.at(-1)).toMatchObject({ status: 429, code: 'spend_limit_reached', model: 'gpt-4o-mini' });

    const stranger = await makeUser(app.services);
    await expectTrpcError((await clientFor(app, stranger)).keys.refusals.query({ id: key.id }), 'NOT_FOUND');

    const page = await (await signIn(app, owner.email, owner.password)).get(`/keys/${key.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Refused requests');
    expect(page.text).toContain('spend_limit_reached');
    expect(page.text).toContain('no-such-model');
  });

  it('refusals not flushed yet are shown at once on this instance', async () => {
    const { key, secret } = await makeKey(app.services, owner, { name: 'fresh' });
    await app.services.keys.revoke(key.id, owner.actor);
    await hammer(secret, 5);
    const now = await (await clientFor(app, owner)).keys.refusals.query({ id: key.id });
    expect(now.byDay).toEqual([{ day: '2026-11-26', status: 401, code: 'key_revoked', refusals: 5 }]);
    expect(now.recent).toHaveLength(5);
    await app.services.refusals.flush();
    expect((await (await clientFor(app, owner)).keys.refusals.query({ id: key.id })).byDay[0]!.refusals).toBe(5);
  });

  it('requests with an unknown key (no owner) or no key write nothing', async () => {
    writes.length = 0;
    const unknown = await hammer(generateSecret('mbk_'), 100);
    expect(new Set(unknown)).toEqual(new Set([401]));
    const none = await new OpenAI({ apiKey: 'sk-not-ours', baseURL: `${app.url}/v1`, maxRetries: 0 }).chat.completions.create(chat).catch((e: { status: number }) => e.status);
    expect(none).toBe(401);
    await app.services.refusals.flush();
    expect(writes).toEqual([]);
  });
});
