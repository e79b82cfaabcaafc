import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeUser } from '../support/factories.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

describe(`guard-rails on new keys over tRPC (${dialect})`, () => {
  let app: TestApp;
  let owner: ModelBridgeClient, member: ModelBridgeClient, admin: ModelBridgeClient;
  let teamId: string;
  const inDays = (days: number) => new Date(app.services.clock.now().getTime() + days * 86_400_000).toISOString();

  beforeAll(async () => {
    app = await startTestApp();
    const [o, m, a] = await Promise.all([makeUser(app.services), makeUser(app.services), makeUser(app.services, { admin: true })]);
    [owner, member, admin] = await Promise.all([clientFor(app, o), clientFor(app, m), clientFor(app, a)]);
    teamId = (await owner.teams.create.mutate({ name: 'Platform' })).id;
    await owner.teams.addMember.mutate({ teamId, email: m.email, role: 'member' });
  });
  afterAll(async () => app.close());

  it('lists a key made before the rule as violating, without breaking it, and refuses new keys that break it', async () => {
    const old = await member.keys.create.mutate({ name: 'old laptop', teamId });
    await expectTrpcError(member.teams.setKeyPolicy.mutate({ teamId, requireLimit: true }), 'FORBIDDEN');
    await owner.teams.setKeyPolicy.mutate({ teamId, requireLimit: true, maxExpiryDays: 30 });

    const { violatingKeys } = await owner.teams.keyPolicy.query({ teamId });
    expect(violatingKeys.map((v) => [v.key.id, v.violations.map((x) => x.rule)])).toEqual([[old.key.id, ['limit_required', 'expiry_required']]]);
    expect((await member.keys.get.query({ id: old.key.id })).status).toBe('active');

    const err = await expectTrpcError(member.keys.create.mutate({ name: 'ci', teamId, expiresAt: inDays(60) }), 'BAD_REQUEST');
    expect(err.message).toMatch(/This team requires a spending limit/);
    expect(err.message).toMatch(/within 30 days/);
    const ok = await member.keys.create.mutate({ name: 'ci', teamId, spendLimitAud: '5', expiresAt: inDays(10) });
    expect(ok.key.teamId).toBe(teamId);
    // Personal keys are not the team's business.
    await member.keys.create.mutate({ name: 'personal' });
  });

  it('refuses removing a required limit, and a name already in use when names must be unique', async () => {
    const k = await member.keys.create.mutate({ name: 'cursor', teamId, spendLimitAud: '5', expiresAt: inDays(5) });
    await expectTrpcError(member.keys.update.mutate({ id: k.key.id, spendLimitAud: null }), 'BAD_REQUEST');
    await owner.teams.setKeyPolicy.mutate({ teamId, uniqueNames: true });
    const err = await expectTrpcError(member.keys.create.mutate({ name: ' Cursor ', teamId, spendLimitAud: '5', expiresAt: inDays(5) }), 'BAD_REQUEST');
    expect(err.message).toMatch(/already have a key called 'Cursor'/);
    // Rotation replaces the key and is never refused.
    await member.keys.rotate.mutate({ id: k.key.id, gracePeriodSeconds: 60 });
  });

  it('lets installation admins require a limit on every key; the stricter expiry wins', async () => {
    await expectTrpcError(owner.admin.keyPolicy.set.mutate({ requireLimit: true }), 'FORBIDDEN');
    await admin.admin.keyPolicy.set.mutate({ requireLimit: true, maxExpiryDays: 7 });
    const err = await expectTrpcError(member.keys.create.mutate({ name: 'script' }), 'BAD_REQUEST');
    expect(err.message).toMatch(/This installation requires a spending limit/);
    await expectTrpcError(member.keys.create.mutate({ name: 'ci2', teamId, spendLimitAud: '5', expiresAt: inDays(10) }), 'BAD_REQUEST');
    const { violatingKeys } = await admin.admin.keyPolicy.get.query();
    expect(violatingKeys.some((v) => v.key.name === 'personal')).toBe(true);
    await admin.admin.keyPolicy.set.mutate({ requireLimit: false, maxExpiryDays: null });
  });
});
