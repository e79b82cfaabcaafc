import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

describe(`installation admin procedures over tRPC (${dialect})`, () => {
  let app: TestApp;
  let admin: TestUser;
  let alice: TestUser;
  let mb: ModelBridgeClient;
  let aliceMb: ModelBridgeClient;

  beforeAll(async () => {
    app = await startTestApp();
    admin = await makeUser(app.services, { admin: true });
    alice = await makeUser(app.services);
    mb = await clientFor(app, admin);
    aliceMb = await clientFor(app, alice);
  });
  afterAll(async () => app.close());

  it('lists users without password hashes', async () => {
    const users = await mb.admin.users.list.query();
    expect(users.map((u) => u.email)).toEqual(expect.arrayContaining([admin.email, alice.email]));
    expect(Object.keys(users[0]!).sort()).toEqual(['createdAt', 'disabled', 'email', 'id', 'name', 'planId', 'role']);
  });

  it('moves a user to another plan, which their me.get then shows', async () => {
    expect((await aliceMb.me.get.query()).plan.name).toBe('Free');
    expect((await mb.admin.users.setPlan.mutate({ userId: alice.user.id, planId: 'plan_pro' })).planId).toBe('plan_pro');
    const me = await aliceMb.me.get.query();
    expect(me.plan).toMatchObject({ id: 'plan_pro', name: 'Pro', includedAud: '50', overageAllowed: true, overageCapAud: '200' });
    expect(me.balance).toMatchObject({ includedAud: '50', overageCapAud: '200' });
  });

  it('disables and re-enables a user, but never the admin themself', async () => {
    const bob = await makeUser(app.services);
    expect((await mb.admin.users.disable.mutate({ userId: bob.user.id })).disabled).toBe(true);
    expect((await mb.admin.users.disable.mutate({ userId: bob.user.id, disabled: false })).disabled).toBe(false);
    await expectTrpcError(mb.admin.users.disable.mutate({ userId: admin.user.id }), 'BAD_REQUEST');
    const actions = (await app.t.db('audit_events').where({ target_id: bob.user.id }).orderBy('id')).map((r) => r.action);
    expect(actions).toEqual(['user.create', 'user.disable', 'user.enable']);
  });

  it('credits a user’s prepaid balance and a team balance, with ledger entries', async () => {
    expect(await mb.admin.credit.mutate({ userId: alice.user.id, amountAud: '12.5', note: 'invoice 42' })).toEqual({ userId: alice.user.id, balanceAud: '12.5' });
    expect(await mb.admin.credit.mutate({ userId: alice.user.id, amountAud: '0.000001' })).toEqual({ userId: alice.user.id, balanceAud: '12.500001' });
    expect((await aliceMb.me.get.query()).balance.prepaidAud).toBe('12.500001');
    const team = await makeTeam(app.services, alice);
    expect(await mb.admin.credit.mutate({ teamId: team.id, amountAud: '100' })).toEqual({ teamId: team.id, balanceAud: '100' });
    expect((await aliceMb.teams.get.query({ id: team.id })).balanceAud).toBe('100');
    const ledger = await app.t.db('ledger_entries').where({ kind: 'topup' }).orderBy('id');
    expect(ledger.map((e) => [e.account, String(e.amount_micro), e.note])).toEqual([
      ['user_prepaid', '12500000', 'invoice 42'],
      ['user_prepaid', '1', null],
      ['team', '100000000', null],
    ]);
  });

  it('refuses top-ups that are zero, negative, malformed or aimed at both or neither account', async () => {
    for (const amountAud of ['0', '-5', 'ten', '1.0000001']) await expectTrpcError(mb.admin.credit.mutate({ userId: alice.user.id, amountAud }), 'BAD_REQUEST');
    await expectTrpcError(mb.admin.credit.mutate({ amountAud: '5' }), 'BAD_REQUEST');
    const team = await makeTeam(app.services, alice);
    await expectTrpcError(mb.admin.credit.mutate({ userId: alice.user.id, teamId: team.id, amountAud: '5' }), 'BAD_REQUEST');
    await expectTrpcError(mb.admin.credit.mutate({ userId: alice.user.id, amountAud: '5', note: 'n'.repeat(256) }), 'BAD_REQUEST');
  });

  it('adds and edits catalog models; models.list shows prices as AUD per million tokens', async () => {
    const created = await mb.admin.models.upsert.mutate({ id: 'gpt-test', provider: 'openai', upstreamModel: 'gpt-test-2026', inputAudPerMTok: '1.55', outputAudPerMTok: '6.2', maxOutputTokens: 8192 });
    const noCachePrices = { cachedInputAudPerMTok: null, cacheWriteAudPerMTok: null, cacheWrite1hAudPerMTok: null };
    expect(created).toEqual({ id: 'gpt-test', provider: 'openai', upstreamModel: 'gpt-test-2026', inputAudPerMTok: '1.55', outputAudPerMTok: '6.2', ...noCachePrices, enabled: true, aliases: [], maxOutputTokens: 8192 });
    const updated = await mb.admin.models.upsert.mutate({ id: 'gpt-test', provider: 'openai', upstreamModel: 'gpt-test-2026', inputAudPerMTok: '2', outputAudPerMTok: '8', enabled: false });
    expect(updated).toMatchObject({ inputAudPerMTok: '2', enabled: false, maxOutputTokens: 8192 });
    const listed = (await aliceMb.models.list.query()).find((m) => m.id === 'gpt-test');
    expect(listed).toEqual({ id: 'gpt-test', provider: 'openai', upstreamModel: 'gpt-test-2026', inputAudPerMTok: '2', outputAudPerMTok: '8', ...noCachePrices, enabled: false, aliases: [] });
    await expectTrpcError(mb.admin.models.upsert.mutate({ id: 'bad id!', provider: 'openai', upstreamModel: 'x', inputAudPerMTok: '1', outputAudPerMTok: '1' }), 'BAD_REQUEST');
    await expectTrpcError(mb.admin.models.upsert.mutate({ id: 'neg', provider: 'openai', upstreamModel: 'x', inputAudPerMTok: '-1', outputAudPerMTok: '1' }), 'BAD_REQUEST');
    const audit = await app.t.db('audit_events').where({ target_type: 'model', target_id: 'gpt-test' }).orderBy('id');
    expect(audit.map((a) => a.action)).toEqual(['model.create', 'model.update']);
  });

  it('sets, keeps and clears prompt-cache prices; models.list carries them; the seeded models have their providers’ prices', async () => {
    const base = { id: 'claude-test', provider: 'anthropic' as const, upstreamModel: 'claude-test-1', inputAudPerMTok: '4.65', outputAudPerMTok: '23.25' };
    const set = await mb.admin.models.upsert.mutate({ ...base, cachedInputAudPerMTok: '0.465', cacheWriteAudPerMTok: '5.8125', cacheWrite1hAudPerMTok: '9.3' });
    expect(set).toMatchObject({ cachedInputAudPerMTok: '0.465', cacheWriteAudPerMTok: '5.8125', cacheWrite1hAudPerMTok: '9.3' });
    expect((await app.services.models.find('claude-test'))).toMatchObject({ cachedInputMicroPerMTok: 465_000, cacheWriteMicroPerMTok: 5_812_500, cacheWrite1hMicroPerMTok: 9_300_000 });
    // Omitted: kept. null: billed at the input price again.
    const kept = await mb.admin.models.upsert.mutate({ ...base, outputAudPerMTok: '24' });
    expect(kept).toMatchObject({ outputAudPerMTok: '24', cachedInputAudPerMTok: '0.465', cacheWriteAudPerMTok: '5.8125', cacheWrite1hAudPerMTok: '9.3' });
    const cleared = await mb.admin.models.upsert.mutate({ ...base, cacheWrite1hAudPerMTok: null });
    expect(cleared).toMatchObject({ cachedInputAudPerMTok: '0.465', cacheWriteAudPerMTok: '5.8125', cacheWrite1hAudPerMTok: null });
    const listed = (await aliceMb.models.list.query()).find((m) => m.id === 'claude-test');
    expect(listed).toMatchObject({ cachedInputAudPerMTok: '0.465', cacheWriteAudPerMTok: '5.8125', cacheWrite1hAudPerMTok: null });
    await expectTrpcError(mb.admin.models.upsert.mutate({ ...base, cachedInputAudPerMTok: '-0.1' }), 'BAD_REQUEST');

    const seeded = new Map((await aliceMb.models.list.query()).map((m) => [m.id, m]));
    expect(seeded.get('claude-sonnet-4-5')).toMatchObject({ inputAudPerMTok: '4.65', cachedInputAudPerMTok: '0.465', cacheWriteAudPerMTok: '5.8125', cacheWrite1hAudPerMTok: '9.3' });
    expect(seeded.get('claude-haiku-4-5')).toMatchObject({ inputAudPerMTok: '1.55', cachedInputAudPerMTok: '0.155', cacheWriteAudPerMTok: '1.9375', cacheWrite1hAudPerMTok: '3.1' });
    expect(seeded.get('gpt-4o')).toMatchObject({ inputAudPerMTok: '3.875', cachedInputAudPerMTok: '1.9375', cacheWriteAudPerMTok: null });
    expect(seeded.get('gpt-4o-mini')).toMatchObject({ inputAudPerMTok: '0.2325', cachedInputAudPerMTok: '0.11625' });
    expect(seeded.get('gpt-4.1')).toMatchObject({ inputAudPerMTok: '3.1', cachedInputAudPerMTok: '0.775' });
    expect(seeded.get('text-embedding-3-small')).toMatchObject({ cachedInputAudPerMTok: null, cacheWriteAudPerMTok: null, cacheWrite1hAudPerMTok: null });
  });

  it('creates and updates plans, audited, keeping exactly one default', async () => {
    const team = await mb.admin.plans.create.mutate({ name: ' Team ', includedAud: '100', overageAllowed: true, overageCapAud: null });
    expect(team).toMatchObject({ name: 'Team', includedAud: '100', overageAllowed: true, overageCapAud: null, isDefault: false });
    await expectTrpcError(mb.admin.plans.create.mutate({ name: 'team', includedAud: '1', overageAllowed: false, overageCapAud: null }), 'CONFLICT');
    await expectTrpcError(mb.admin.plans.create.mutate({ name: 'Neg', includedAud: '-1', overageAllowed: false, overageCapAud: null }), 'BAD_REQUEST');

    const updated = await mb.admin.plans.update.mutate({ id: team.id, overageCapAud: '250.75', isDefault: true });
    expect(updated).toMatchObject({ name: 'Team', includedAud: '100', overageCapAud: '250.75', isDefault: true });
    const plans = await mb.admin.plans.list.query();
    expect(plans.filter((p) => p.isDefault).map((p) => p.id)).toEqual([team.id]);
    await expectTrpcError(mb.admin.plans.update.mutate({ id: team.id, isDefault: false }), 'BAD_REQUEST');
    await expectTrpcError(mb.admin.plans.update.mutate({ id: team.id, name: 'Pro' }), 'CONFLICT');
    await mb.admin.plans.update.mutate({ id: 'plan_free', isDefault: true });

    // New users get the default plan.
    expect((await makeUser(app.services)).user.planId).toBe('plan_free');
    const audit = await app.t.db('audit_events').where({ target_type: 'plan', target_id: team.id }).orderBy('id');
    expect(audit.map((a) => a.action)).toEqual(['plan.create', 'plan.update']);
    expect(JSON.parse(audit[1].details)).toMatchObject({ before: { overageCapMicro: null }, after: { overageCapMicro: 250_750_000, isDefault: true }, previousDefaultId: 'plan_free' });
    const backToFree = await app.t.db('audit_events').where({ target_type: 'plan', target_id: 'plan_free' }).orderBy('id', 'desc').first();
    expect(JSON.parse(backToFree.details)).toMatchObject({ after: { isDefault: true }, previousDefaultId: team.id });
  });

  it('pages through the audit log newest first and filters it by target', async () => {
    const first = await mb.admin.audit.list.query({ limit: 3 });
    expect(first.items).toHaveLength(3);
    expect(first.nextCursor).toBe(first.items[2]!.id);
    const second = await mb.admin.audit.list.query({ limit: 3, cursor: first.nextCursor! });
    expect(Number(second.items[0]!.id)).toBeLessThan(Number(first.items[2]!.id));
    const forAlice = await mb.admin.audit.list.query({ targetType: 'user', targetId: alice.user.id });
    expect(forAlice.items.map((e) => e.action)).toEqual(expect.arrayContaining(['user.create', 'user.set_plan', 'balance.credit']));
    expect(forAlice.items.every((e) => e.targetId === alice.user.id)).toBe(true);
  });
});
