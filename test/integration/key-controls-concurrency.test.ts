import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { createTestDb, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

/**
 * The controls are exact across instances: two apps on one MySQL database, requests spread over both, all at once.
 * Row locks decide, so MySQL only (SQLite serialises everything on its one connection).
 */
describe.runIf(onMysql)('key controls under concurrency, two instances (mysql)', () => {
  let fake: FakeUpstream;
  let t: TestDb;
  let apps: TestApp[];
  let owner: TestUser;
  const clock = new ManualClock('2026-12-02T00:00:05.000Z');

  beforeAll(async () => {
    fake = await startFakeUpstream();
    t = await createTestDb();
    const env = { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o' };
    apps = [await startTestApp({ testDb: t, clock, env }), await startTestApp({ testDb: t, clock, env })];
    owner = await makeUser(apps[0]!.services, { prepaidMicro: 1_000_000_000 });
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => {
    for (const app of apps ?? []) await app.close();
    await t?.destroy();
    await fake?.close();
  });

  /** `n` requests at once, alternating between the instances (every third streamed); the statuses. */
  async function burst(secret: string, n: number): Promise<number[]> {
    const clients = apps.map((app) => new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 }));
    return Promise.all(Array.from({ length: n }, async (_, i) => {
      const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `request ${i}` }], max_tokens: 8 };
      try {
        if (i % 3 === 0) for await (const _ of await clients[i % 2]!.chat.completions.create({ ...body, stream: true })) { /* drain */ }
        else await clients[i % 2]!.chat.completions.create(body);
        return 200;
      } catch (err) {
        return (err as { status?: number }).status ?? -1;
      }
    }));
  }

  it('rpmLimit 60 with 200 concurrent requests over two instances admits exactly 60 in the window', async () => {
    const { key, secret } = await makeKey(apps[0]!.services, owner);
    await apps[0]!.services.keys.update(key.id, { rpmLimit: 60 }, owner.actor);
    const statuses = await burst(secret, 200);
    expect(statuses.filter((s) => s === 200)).toHaveLength(60);
    expect(statuses.filter((s) => s === 429)).toHaveLength(140);
    expect(await t.db('usage_events').where({ key_id: key.id })).toHaveLength(60);
    expect(fake.served).toBe(60);
  });

  it('maxParallel 3 never has more than 3 requests of the key in flight, on both instances together', async () => {
    const { key, secret } = await makeKey(apps[0]!.services, owner);
    await apps[0]!.services.keys.update(key.id, { maxParallel: 3 }, owner.actor);
    fake.setMode('slow');
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const counted = await t.db('holds').where({ key_id: key.id }).count({ n: '*' }).first();
        peak = Math.max(peak, Number(counted?.n ?? 0));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const statuses = await burst(secret, 40);
    sampling = false;
    await sampler;
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(0);
    expect(Number((await t.db('api_keys').where({ id: key.id }).first()).in_flight)).toBe(0);
  });

  it('a member budget over two keys and two instances is overrun by at most one request', async () => {
    const member = await makeUser(apps[0]!.services);
    const team = await makeTeam(apps[0]!.services, owner, { members: [[member, 'member']], balanceMicro: 1_000_000_000 });
    const a = await makeKey(apps[0]!.services, member, { teamId: team.id });
    const b = await makeKey(apps[0]!.services, member, { teamId: team.id });
    const budget = 200; // micro-AUD: a handful of requests
    await apps[0]!.services.teamControls.setMemberBudget(team.id, member.user.id, budget, owner.actor);
    const statuses = (await Promise.all([burst(a.secret, 60), burst(b.secret, 60)])).flat();
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const events = await t.db('usage_events').where({ team_id: team.id, user_id: member.user.id });
    const costs = events.map((e) => toMicro(e.cost_micro));
    const spent = costs.reduce((s, c) => s + c, 0);
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(budget + Math.max(...costs));
    const row = await t.db('team_members').where({ team_id: team.id, user_id: member.user.id }).first();
    expect(toMicro(row.budget_spend_micro)).toBe(spent);
    expect(toMicro(row.budget_held_micro)).toBe(0);
  });
});
