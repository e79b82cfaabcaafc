import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError, insertUsageEvent } from '../support/trpc.js';

describe(`me, usage, tokens and models over tRPC (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let alice: TestUser;
  let mb: ModelBridgeClient;

  beforeAll(async () => {
    clock = new ManualClock('2026-11-26T06:00:00.000Z');
    // Adelaide is UTC+10:30 in summer: a half-hour offset checks that usage folds into local days exactly.
    app = await startTestApp({ clock, env: { MODELBRIDGE_TIMEZONE: 'Australia/Adelaide' } });
    alice = await makeUser(app.services, { prepaidMicro: 3_250_000 });
    mb = await clientFor(app, alice);
  });
  afterAll(async () => app.close());

  it('me.get returns the user, plan, this period’s balance and teams with roles', async () => {
    const bob = await makeUser(app.services);
    const own = await makeTeam(app.services, alice, { name: 'Alpha' });
    const theirs = await makeTeam(app.services, bob, { name: 'Beta', members: [[alice, 'viewer']] });
    await app.t.db('personal_balances').where({ user_id: alice.user.id }).update({ included_used_micro: 1_234_567 });
    const me = await mb.me.get.query();
    expect(Object.keys(me).sort()).toEqual(['balance', 'plan', 'teams', 'user']);
    expect(me.user).toMatchObject({ id: alice.user.id, email: alice.email, role: 'user', disabled: false });
    expect(me.plan).toMatchObject({ id: 'plan_free', name: 'Free', includedAud: '5', overageAllowed: false });
    expect(me.balance).toEqual({
      includedAud: '5', includedUsedAud: '1.234567', prepaidAud: '3.25', overageUsedAud: '0', overageCapAud: '0',
      periodStart: '2026-10-31T13:30:00.000Z', periodEnd: '2026-11-30T13:30:00.000Z', alertThresholds: null,
    });
    expect(me.teams).toEqual([
      { id: own.id, name: 'Alpha', balanceAud: '0', role: 'owner' },
      { id: theirs.id, name: 'Beta', balanceAud: '0', role: 'viewer' },
    ]);
  });

  it('keys.usage totals one key per local day and per model', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'usage' });
    const other = (await mb.keys.create.mutate({ name: 'other' })).key;
    await insertUsageEvent(app, key, { at: new Date('2026-11-25T13:29:00Z'), costMicro: 100, model: 'gpt-4o' }); // 23:59 on the 25th
    await insertUsageEvent(app, key, { at: new Date('2026-11-25T13:31:00Z'), costMicro: 200, model: 'gpt-4o' }); // 00:01 on the 26th
    await insertUsageEvent(app, key, { at: new Date('2026-11-26T05:00:00Z'), costMicro: 300, model: 'claude-haiku-4-5', inputTokens: 7, outputTokens: 3, cachedInputTokens: 900, reasoningTokens: 2 });
    await insertUsageEvent(app, key, { at: new Date('2026-10-01T00:00:00Z'), costMicro: 5_000_000 }); // outside the default 30 days
    await insertUsageEvent(app, other, { at: new Date('2026-11-26T05:00:00Z'), costMicro: 9_999 });

    const usage = await mb.keys.usage.query({ id: key.id });
    expect(usage.from).toBe('2026-10-27T06:00:00.000Z');
    expect(usage.to).toBe('2026-11-26T06:00:00.000Z');
    // Each kind of token apart: inputTokens is the uncached input, reasoningTokens a part of outputTokens.
    const none = { cachedInputTokens: 0, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, reasoningTokens: 0 };
    const cached = { ...none, cachedInputTokens: 900, reasoningTokens: 2 };
    expect(usage.totals).toEqual({ requests: 3, inputTokens: 27, outputTokens: 13, ...cached, costAud: '0.0006' });
    expect(usage.byDay).toEqual([
      { day: '2026-11-25', requests: 1, inputTokens: 10, outputTokens: 5, ...none, costAud: '0.0001' },
      { day: '2026-11-26', requests: 2, inputTokens: 17, outputTokens: 8, ...cached, costAud: '0.0005' },
    ]);
    expect(usage.byModel).toEqual([
      { model: 'claude-haiku-4-5', requests: 1, inputTokens: 7, outputTokens: 3, ...cached, costAud: '0.0003' },
      { model: 'gpt-4o', requests: 2, inputTokens: 20, outputTokens: 10, ...none, costAud: '0.0003' },
    ]);
    const october = await mb.keys.usage.query({ id: key.id, from: '2026-09-30T00:00:00Z', to: '2026-10-31T00:00:00Z' });
    expect(october.totals).toMatchObject({ requests: 1, costAud: '5' });
  });

  it('usage.list pages newest first with a cursor and filters by key and time', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'paged' });
    for (let i = 0; i < 5; i++) await insertUsageEvent(app, key, { at: new Date(Date.UTC(2026, 10, 20, i)), costMicro: 1_000_000 + i });
    const seen: string[] = [];
    let cursor: string | undefined;
    const sizes: number[] = [];
    do {
      const page = await mb.usage.list.query({ keyId: key.id, limit: 2, cursor });
      sizes.push(page.items.length);
      seen.push(...page.items.map((e) => e.costAud));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual(['1.000004', '1.000003', '1.000002', '1.000001', '1']);

    const window = await mb.usage.list.query({ keyId: key.id, from: '2026-11-20T01:00:00Z', to: '2026-11-20T03:00:00Z' });
    expect(window.items.map((e) => e.costAud)).toEqual(['1.000002', '1.000001']);
    const event = window.items[0]!;
    expect(event).toMatchObject({ keyId: key.id, userId: alice.user.id, teamId: null, provider: 'openai', outcome: 'ok', estimated: false, httpStatus: 200, streamed: false });
    expect(event.split).toEqual({ includedAud: '1.000002', prepaidAud: '0', overageAud: '0', teamAud: '0' });
    expect(event.createdAt).toBe('2026-11-20T02:00:00.000Z');
    const everything = await mb.usage.list.query();
    expect(everything.items.length).toBeGreaterThanOrEqual(9);
  });

  it('creates, lists and revokes management tokens, showing each secret once', async () => {
    const { token, secret } = await mb.tokens.create.mutate({ name: 'deploys', expiresAt: '2027-01-01T00:00:00Z' });
    expect(secret).toMatch(/^mbm_[0-9A-Za-z]{34}$/);
    expect(token).toEqual({ id: token.id, name: 'deploys', last4: secret.slice(-4), status: 'active', expiresAt: '2027-01-01T00:00:00.000Z', revokedAt: null, lastUsedAt: null, createdAt: clock.now().toISOString() });
    const listed = await mb.tokens.list.query();
    expect(listed.map((t) => t.id)).toContain(token.id);
    expect(JSON.stringify(listed)).not.toContain(secret);

    const bob = await makeUser(app.services);
    const bobMb = await clientFor(app, bob);
    await expectTrpcError(bobMb.tokens.revoke.mutate({ id: token.id }), 'NOT_FOUND');
    expect((await bobMb.tokens.list.query()).map((t) => t.id)).not.toContain(token.id);
    expect(await mb.tokens.revoke.mutate({ id: token.id })).toMatchObject({ status: 'revoked', revokedAt: clock.now().toISOString() });
  });

  it('models.list shows the seeded catalog with AUD prices per million tokens', async () => {
    const models = await mb.models.list.query();
    expect(models.find((m) => m.id === 'gpt-4o-mini')).toEqual({
      id: 'gpt-4o-mini', provider: 'openai', upstreamModel: 'gpt-4o-mini', inputAudPerMTok: '0.2325', outputAudPerMTok: '0.93',
      cachedInputAudPerMTok: '0.11625', cacheWriteAudPerMTok: null, cacheWrite1hAudPerMTok: null, enabled: true, aliases: [],
    });
  });
});
