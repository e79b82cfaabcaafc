import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost, type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { onMysql } from '../support/db.js';
import { adminActor, makeKey, makeTeam, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const CONCURRENCY = 60;
const MAX_WAVES = 12;

/** Concurrency needs real row locks: MySQL only (SQLite serialises everything on one connection). */
describe.runIf(onMysql)('concurrent requests never overspend (mysql)', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let mini: CatalogModel;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o' } });
    mini = (await app.services.models.find('gpt-4o-mini'))!;
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const bodyOf = (i: number) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `request ${i} ${'x'.repeat(i % 5)}` }], max_tokens: 8 });
  const maxCost = () => Math.max(...Array.from({ length: CONCURRENCY }, (_, i) => {
    const u = fake.expectedUsage(bodyOf(i));
    return requestCost(mini, u);
  }));

  /** Waves of CONCURRENCY simultaneous requests (half streamed) until `done`; returns every status seen. */
  async function flood(secret: string, done: () => Promise<boolean>): Promise<number[]> {
    const client = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const statuses: number[] = [];
    for (let wave = 0; wave < MAX_WAVES && !(await done()); wave++) {
      statuses.push(...(await Promise.all(Array.from({ length: CONCURRENCY }, async (_, i) => {
        try {
          if (i % 2) for await (const _ of await client.chat.completions.create({ ...bodyOf(i), stream: true })) { /* drain */ }
          else await client.chat.completions.create(bodyOf(i));
          return 200;
        } catch (err) {
          return (err as { status?: number }).status ?? -1;
        }
      }))));
    }
    return statuses;
  }

  async function chargedEvents(where: Record<string, string>) {
    const events = await app.t.db('usage_events').where(where);
    expect(events.every((e) => e.outcome === 'ok')).toBe(true);
    return events.filter((e) => toMicro(e.cost_micro) > 0);
  }

  it('holds a key’s spend to its limit plus one request, refusing only with 429', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 50_000_000 });
    const limit = 150;
    const { key, secret } = await makeKey(app.services, owner, { spendLimitMicro: limit });
    const row = () => app.t.db('api_keys').where({ id: key.id }).first();
    const statuses = await flood(secret, async () => (await row()).status === 'limit_reached');

    const final = await row();
    expect(final.status).toBe('limit_reached');
    const spend = toMicro(final.spend_micro);
    expect(spend).toBeGreaterThanOrEqual(limit);
    expect(spend).toBeLessThanOrEqual(limit + maxCost());
    const refused = statuses.filter((s) => s !== 200);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((s) => s === 429)).toBe(true);
    const charged = await chargedEvents({ key_id: key.id });
    expect(fake.served).toBe(charged.length);
    expect(statuses.filter((s) => s === 200)).toHaveLength(charged.length);
  });

  it('holds a team balance to zero minus at most one request, refusing with 402 or 429', async () => {
    const owner = await makeUser(app.services);
    const team = await makeTeam(app.services, owner, { balanceMicro: 200 });
    const { secret } = await makeKey(app.services, owner, { teamId: team.id });
    const balance = async () => toMicro((await app.t.db('teams').where({ id: team.id }).first()).balance_micro);
    const statuses = await flood(secret, async () => (await balance()) <= 0);

    const final = await balance();
    expect(final).toBeLessThanOrEqual(0);
    expect(final).toBeGreaterThanOrEqual(-maxCost());
    expect(statuses.filter((s) => s !== 200).every((s) => s === 402 || s === 429)).toBe(true);
    const next = await new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 }).chat.completions.create(bodyOf(0)).catch((e: unknown) => e);
    expect(next).toMatchObject({ status: 402, code: 'insufficient_balance' });
    expect(fake.served).toBe((await chargedEvents({ team_id: team.id })).length);
  });

  it('holds personal buckets in order, the crossing request’s shortfall only on prepaid', async () => {
    await app.services.plans.create({ name: 'Tiny', includedMicro: 120, overageAllowed: true, overageCapMicro: 60 }, adminActor);
    const owner = await makeUser(app.services, { plan: 'Tiny' as 'Free', prepaidMicro: 90 });
    const { secret } = await makeKey(app.services, owner);
    const balances = () => app.t.db('personal_balances').where({ user_id: owner.user.id }).first();
    const statuses = await flood(secret, async () => {
      const b = await balances();
      return toMicro(b.included_used_micro) >= 120 && toMicro(b.prepaid_micro) <= 0 && toMicro(b.overage_used_micro) >= 60;
    });

    const b = await balances();
    expect(toMicro(b.included_used_micro)).toBe(120);
    expect(toMicro(b.overage_used_micro)).toBe(60);
    expect(toMicro(b.prepaid_micro)).toBeLessThanOrEqual(0);
    expect(toMicro(b.prepaid_micro)).toBeGreaterThanOrEqual(-maxCost());
    expect(statuses.filter((s) => s !== 200).every((s) => s === 402 || s === 429)).toBe(true);
    expect(fake.served).toBe((await chargedEvents({ user_id: owner.user.id })).length);
  });
});
