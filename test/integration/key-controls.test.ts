import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

/**
 * The key controls of docs/limits.md through the proxy, with the official SDK as client, on both databases: pause,
 * allow-lists, rate limits and their headers, budget periods crossing a boundary with a request in flight, member
 * budgets, tags in the usage log. Time is a ManualClock (11:00 in Sydney, mid-week).
 */
describe('key controls', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let owner: TestUser;
  const clock = new ManualClock('2026-12-02T00:00:00.000Z');

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ clock, env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', MODELBRIDGE_TIMEZONE: 'Australia/Sydney' } });
    owner = await makeUser(app.services, { prepaidMicro: 100_000_000 });
  });
  beforeEach(() => {
    fake.reset();
    clock.set('2026-12-02T00:00:00.000Z');
  });
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const client = (secret: string) => new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
  const ask = (secret: string, model = 'gpt-4o-mini') => client(secret).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
  const refusal = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      const e = err as { status: number; code: string; message: string; headers: Headers };
      return { status: e.status, code: e.code, message: e.message, headers: e.headers };
    }
    throw new Error('expected a refusal');
  };
  const keyRow = (id: string) => app.t.db('api_keys').where({ id }).first();

  it('pauses a key at once (401 key_disabled), resumes it, and audits both — revocation stays final', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    await ask(secret);
    expect((await app.services.keys.disable(key.id, owner.actor)).status).toBe('disabled');
    const r = await refusal(ask(secret));
    expect([r.status, r.code]).toEqual([401, 'key_disabled']);
    expect((await refusal(client(secret).models.list())).code).toBe('key_disabled');
    expect((await app.services.keys.enable(key.id, owner.actor)).status).toBe('active');
    await ask(secret);
    const actions = (await app.t.db('audit_events').where({ target_id: key.id }).select('action')).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['key.disable', 'key.enable']));
    await app.services.keys.revoke(key.id, owner.actor);
    await expect(app.services.keys.enable(key.id, owner.actor)).rejects.toThrow(/revoked/);
  });

  it('refuses a model outside the allow-list with 403 before any hold, naming the allowed ones, and lists only those', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    await app.services.keys.update(key.id, { allowedModels: ['gpt-4o-mini'] }, owner.actor);
    await ask(secret);
    const r = await refusal(ask(secret, 'gpt-4o'));
    expect([r.status, r.code]).toEqual([403, 'model_not_allowed']);
    expect(r.message).toContain('gpt-4o-mini');
    expect(await app.t.db('usage_events').where({ key_id: key.id, model: 'gpt-4o' })).toHaveLength(0);
    expect(fake.served).toBe(1);
    const listed = (await client(secret).models.list()).data.map((m) => m.id);
    expect(listed).toContain('gpt-4o-mini');
    expect(listed).not.toContain('gpt-4o');
    await expect(app.services.keys.update(key.id, { allowedModels: ['no-such-model'] }, owner.actor)).rejects.toThrow(/not in the catalog/);
  });

  it('lets a team owner set a team-wide list that its keys cannot widen', async () => {
    const member = await makeUser(app.services);
    const team = await makeTeam(app.services, owner, { members: [[member, 'member']], balanceMicro: 50_000_000 });
    const { key, secret } = await makeKey(app.services, member, { teamId: team.id });
    await app.services.keys.update(key.id, { allowedModels: ['gpt-4o-mini', 'gpt-4o'] }, member.actor);
    await app.services.teamControls.setControls(team.id, { allowedModels: ['gpt-4o-mini'] }, owner.actor);
    await expect(app.services.teamControls.setControls(team.id, { allowedModels: null }, member.actor)).rejects.toThrow(/owners and admins/);
    await ask(secret);
    expect((await refusal(ask(secret, 'gpt-4o'))).code).toBe('model_not_allowed');
  });

  it('counts requests per minute exactly, answers 429 rate_limit_exceeded with Retry-After, and sends x-ratelimit-* headers', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    await app.services.keys.update(key.id, { rpmLimit: 3 }, owner.actor);
    clock.set('2026-12-02T00:00:10.000Z');
    const first = await client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }).withResponse();
    expect(first.response.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(first.response.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(first.response.headers.get('x-ratelimit-reset-requests')).toBe('50s');
    await ask(secret);
    await ask(secret);
    const r = await refusal(ask(secret));
    expect([r.status, r.code]).toEqual([429, 'rate_limit_exceeded']);
    expect(r.headers.get('retry-after')).toBe('50');
    expect(r.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(r.message).toContain('rpmLimit');
    clock.set('2026-12-02T00:01:00.000Z');
    await ask(secret);
  });

  it('counts tokens per minute from the estimate at admission, corrected to the real count at settlement', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    await app.services.keys.update(key.id, { tpmLimit: 100_000 }, owner.actor);
    await ask(secret);
    const usage = fake.expectedUsage({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
    expect(Number((await keyRow(key.id)).rate_window_tokens)).toBe(usage.inputTokens + usage.outputTokens);
    await app.services.keys.update(key.id, { tpmLimit: usage.inputTokens + usage.outputTokens + 1 }, owner.actor);
    const r = await refusal(ask(secret));
    expect([r.status, r.code]).toEqual([429, 'rate_limit_exceeded']);
    expect(r.message).toContain('tpmLimit');
  });

  it('refuses beyond maxParallel requests in flight', async () => {
    const { key, secret } = await makeKey(app.services, owner);
    await app.services.keys.update(key.id, { maxParallel: 1 }, owner.actor);
    fake.setMode('slow');
    const slow = ask(secret);
    await vi.waitFor(async () => expect(Number((await keyRow(key.id)).in_flight) === 1).toBe(true));
    const r = await refusal(ask(secret));
    expect([r.status, r.code]).toEqual([429, 'rate_limit_exceeded']);
    expect(r.message).toContain('maxParallel');
    await slow;
    expect(Number((await keyRow(key.id)).in_flight)).toBe(0);
    await ask(secret);
  });

  it('resets a daily limit at local midnight without a job, counting a request in flight across it once, in the period it is settled in', async () => {
    const { key, secret } = await makeKey(app.services, owner, { spendLimitMicro: 1 });
    await app.services.keys.update(key.id, { limitReset: 'daily' }, owner.actor);
    // 23:59:50 in Sydney (UTC+11): ten seconds before the boundary.
    clock.set('2026-12-02T12:59:50.000Z');
    await ask(secret);
    const r = await refusal(ask(secret));
    expect([r.status, r.code]).toEqual([429, 'spend_limit_reached']);
    expect(r.message).toContain('2026-12-02T13:00:00.000Z');
    // A second key of the same limit in flight across the boundary: admitted before it, settled after it.
    const other = await makeKey(app.services, owner, { spendLimitMicro: 1_000_000 });
    await app.services.keys.update(other.key.id, { limitReset: 'daily' }, owner.actor);
    fake.setMode('slow');
    const inFlight = ask(other.secret);
    await vi.waitFor(async () => expect(Number((await keyRow(other.key.id)).in_flight) === 1).toBe(true));
    clock.set('2026-12-02T13:00:05.000Z');
    await inFlight;
    fake.setMode('ok');
    const row = await keyRow(other.key.id);
    expect(toMicro(row.period_spend_micro)).toBe(toMicro(row.spend_micro));
    expect(new Date(row.period_start).toISOString()).toBe('2026-12-02T13:00:00.000Z');
    // The first key: a new day, no job run, the limit has room again; lifetime spend kept.
    await ask(secret);
    const status = await (await fetch(`${app.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } })).json();
    expect(status.limit_reset).toBe('daily');
    expect(status.next_reset_at).toBe('2026-12-03T13:00:00.000Z');
    expect(Number(status.spend_aud)).toBeGreaterThan(Number(status.period_spend_aud));
  });

  it('holds a member to their monthly budget in the team: 429 member_budget_reached, and the member sees it', async () => {
    const member = await makeUser(app.services);
    const team = await makeTeam(app.services, owner, { members: [[member, 'member']], balanceMicro: 50_000_000 });
    const { secret } = await makeKey(app.services, member, { teamId: team.id });
    const second = await makeKey(app.services, member, { teamId: team.id });
    await app.services.teamControls.setMemberBudget(team.id, member.user.id, 1, owner.actor);
    await expect(app.services.teamControls.setMemberBudget(team.id, member.user.id, null, member.actor)).rejects.toThrow(/owners and admins/);
    await ask(secret);
    // Another of the member's team keys shares the budget.
    const r = await refusal(ask(second.secret));
    expect([r.status, r.code]).toEqual([429, 'member_budget_reached']);
    const seen = (await app.services.teamControls.get(team.id, member.actor)).members.find((m) => m.userId === member.user.id)!;
    expect(seen.budgetMicro).toBe(1);
    expect(seen.spentMicro).toBeGreaterThan(0);
  });

  it('filters the usage log by tag', async () => {
    const tagged = await makeKey(app.services, owner);
    await app.services.keys.update(tagged.key.id, { tags: ['pipeline:nightly', 'project-x'] }, owner.actor);
    const plain = await makeKey(app.services, owner);
    await ask(tagged.secret);
    await ask(plain.secret);
    const { events } = await app.services.usage.list({ tag: 'project-x' }, owner.actor);
    expect(new Set(events.map((e) => e.keyId))).toEqual(new Set([tagged.key.id]));
    expect((await app.services.keys.get(tagged.key.id, owner.actor)).tags).toEqual(['pipeline:nightly', 'project-x']);
    await expect(app.services.keys.update(plain.key.id, { tags: ['has space'] }, owner.actor)).rejects.toThrow(/tag/);
  });
});
