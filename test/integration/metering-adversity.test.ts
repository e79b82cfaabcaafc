import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost, type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { adminActor, makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { FILE_PART_TOKENS, startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

/**
 * The metering issue's reproductions of a payer overrun by many requests (failure 1) and of requests whose cost
 * the body does not bound (failure 4), through the proxy with the official SDK against the fake upstream.
 * Prices: 10 AUD per million tokens in and out; a 1,100-byte prompt with max_tokens 500 is estimated at ~0.0166 AUD.
 */
describe(`a payer and a key are overrun by at most one request, whatever the mix (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let flat: CatalogModel;

  beforeAll(async () => {
    fake = await startFakeUpstream({ replyTokens: 500, slowMs: 300 });
    app = await startTestApp({ env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o' } });
    const mini = (await app.services.models.find('gpt-4o-mini'))!;
    flat = await app.services.models.upsert({ ...mini, id: 'flat-10', inputMicroPerMTok: 10_000_000, outputMicroPerMTok: 10_000_000 }, adminActor);
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const prompt = { model: 'flat-10', messages: [{ role: 'user' as const, content: 'p'.repeat(1_100) }], max_tokens: 500 };
  const costOf = (body: unknown) => {
    const u = fake.expectedUsage(body);
    return requestCost(flat, u);
  };

  /** One request per secret, all at once (the fake answers slowly, so they are all in flight together). */
  async function together(secrets: string[], body: Record<string, unknown>): Promise<number[]> {
    fake.setMode('slow');
    return Promise.all(secrets.map(async (secret) => {
      try {
        await new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 }).chat.completions.create(body as never);
        return 200;
      } catch (err) {
        return (err as { status?: number }).status ?? -1;
      }
    }));
  }

  async function twentyTinyKeys(owner: TestUser, teamId?: string): Promise<string[]> {
    const secrets: string[] = [];
    for (let i = 0; i < 20; i++) secrets.push((await makeKey(app.services, owner, { teamId, spendLimitMicro: 1_000 })).secret);
    return secrets;
  }

  it('a team balance: 20 keys with 0.001 AUD limits, one request each at once', async () => {
    const owner = await makeUser(app.services);
    const team = await makeTeam(app.services, owner, { balanceMicro: 50_000 });
    const statuses = await together(await twentyTinyKeys(owner, team.id), prompt);
    const balance = toMicro((await app.t.db('teams').where({ id: team.id }).first()).balance_micro);
    // Before: all 20 admitted (each key reserved only its 0.001 at the team) and the balance ended near −0.1 AUD.
    expect(balance).toBeGreaterThanOrEqual(-costOf(prompt));
    // What 0.05 AUD pays for, plus the one request that crosses it (with all 20 in flight at once, only four holds
    // fit; on a loaded machine some may settle before the last arrive and free their unused holds for more).
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(Math.floor(50_000 / costOf(prompt)) + 1);
    expect(statuses.every((s) => s === 200 || s === 429 || s === 402)).toBe(true);
    expect(fake.served).toBe(statuses.filter((s) => s === 200).length);
  });

  it('a personal balance: 0.05 AUD included, no overage, no prepaid', async () => {
    const plan = await app.services.plans.create({ name: `tiny-${Date.now()}`, includedMicro: 50_000, overageAllowed: false, overageCapMicro: null }, adminActor);
    const owner = await makeUser(app.services);
    await app.services.users.setPlan(owner.user.id, plan.id, adminActor);
    const statuses = await together(await twentyTinyKeys(owner), prompt);
    const b = await app.t.db('personal_balances').where({ user_id: owner.user.id }).first();
    expect(toMicro(b.included_used_micro)).toBeLessThanOrEqual(50_000);
    expect(toMicro(b.prepaid_micro)).toBeGreaterThanOrEqual(-costOf(prompt));
    // What 0.05 AUD pays for, plus the one request that crosses it (with all 20 in flight at once, only four holds
    // fit; on a loaded machine some may settle before the last arrive and free their unused holds for more).
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(Math.floor(50_000 / costOf(prompt)) + 1);
    expect(fake.served).toBe(statuses.filter((s) => s === 200).length);
  });

  it('a request whose input the body does not show holds the whole headroom: limit + one request, not + many', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 100_000_000 });
    const { key, secret } = await makeKey(app.services, owner, { spendLimitMicro: 50_000 });
    // A file the provider reads itself: the fake bills its content (FILE_PART_TOKENS) as input, as a provider does.
    const withFile = { ...prompt, messages: [{ role: 'user', content: [{ type: 'text', text: 'summarise' }, { type: 'file', file: { file_id: 'file-abc' } }] }] };
    const cost = costOf(withFile);
    expect(cost).toBeGreaterThan(FILE_PART_TOKENS * 10); // about 1 AUD: far above any estimate from the bytes
    const statuses = await together(Array.from({ length: 3 }, () => secret), withFile);
    const spend = toMicro((await app.t.db('api_keys').where({ id: key.id }).first()).spend_micro);
    // Before: all three admitted, spend ≈ 3 AUD on a 0.05 AUD limit.
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);
    expect(spend).toBeLessThanOrEqual(50_000 + cost);
    expect(spend).toBe(cost);
  });
});
