import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError, isoIn } from '../support/trpc.js';

const KEY_FIELDS = ['id', 'name', 'last4', 'status', 'spendAud', 'spendLimitAud', 'expiresAt', 'teamId', 'ownerId', 'requestCount', 'createdAt', 'lastUsedAt', 'revokedAt', 'successorId', 'retiresAt',
  // The key controls (docs/limits.md).
  'limitReset', 'periodSpendAud', 'nextResetAt', 'allowedModels', 'rpmLimit', 'tpmLimit', 'maxParallel', 'tags', 'disabledAt',
  // Spend alerts (docs/limits.md, "Alerts").
  'alertThresholds',
  // Rotation that happens (docs/security.md): the rotate-by date under the maximum key age, and scheduled rotation.
  'rotateBy', 'autoRotate'];

describe(`key status transitions over tRPC (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let alice: TestUser;
  let mb: ModelBridgeClient;

  /** What settlement does when a request takes spend to the limit (the proxy is another door). */
  async function settleSpend(id: string, spendMicro: number, status?: 'limit_reached') {
    await app.t.db('api_keys').where({ id }).update({ spend_micro: spendMicro, ...(status && { status }) });
  }

  beforeAll(async () => {
    clock = new ManualClock('2026-11-26T00:00:00.000Z');
    app = await startTestApp({ clock });
    alice = await makeUser(app.services);
    mb = await clientFor(app, alice);
  });
  afterAll(async () => app.close());

  it('creates an active key and shows its secret exactly once, in the SPEC shape', async () => {
    const { key, secret } = await mb.keys.create.mutate({ name: '  deploy bot  ', spendLimitAud: '12.5', expiresAt: isoIn(clock.now(), 86_400) });
    expect(Object.keys(key).sort()).toEqual([...KEY_FIELDS].sort());
    expect(key).toMatchObject({ name: 'deploy bot', status: 'active', spendAud: '0', spendLimitAud: '12.5', teamId: null, ownerId: alice.user.id, requestCount: 0, lastUsedAt: null, revokedAt: null });
    expect(key.expiresAt).toBe('2026-11-27T00:00:00.000Z');
    expect(secret).toMatch(/^mbk_[0-9A-Za-z]{34}$/);
    expect(secret.endsWith(key.last4)).toBe(true);
    expect(JSON.stringify(await mb.keys.get.query({ id: key.id }))).not.toContain(secret);
    expect(JSON.stringify(await mb.keys.list.query())).not.toContain(secret);
  });

  it('reaches limit_reached at the limit, and raising, lowering and removing the limit move it', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'limited', spendLimitAud: '5' });
    await settleSpend(key.id, 4_999_999);
    expect((await mb.keys.get.query({ id: key.id })).status).toBe('active');
    await settleSpend(key.id, 5_000_000, 'limit_reached');
    expect(await mb.keys.get.query({ id: key.id })).toMatchObject({ status: 'limit_reached', spendAud: '5' });

    expect(await mb.keys.update.mutate({ id: key.id, spendLimitAud: '5.000001' })).toMatchObject({ status: 'active', spendLimitAud: '5.000001' });
    expect((await mb.keys.update.mutate({ id: key.id, spendLimitAud: '5' })).status).toBe('limit_reached');
    expect((await mb.keys.update.mutate({ id: key.id, spendLimitAud: '20' })).status).toBe('active');
    expect((await mb.keys.update.mutate({ id: key.id, spendLimitAud: '1' })).status).toBe('limit_reached');
    expect(await mb.keys.update.mutate({ id: key.id, spendLimitAud: null })).toMatchObject({ status: 'active', spendLimitAud: null });
    // Renaming leaves the limit (and so the status) alone.
    await mb.keys.update.mutate({ id: key.id, spendLimitAud: '2' });
    expect(await mb.keys.update.mutate({ id: key.id, name: 'renamed' })).toMatchObject({ name: 'renamed', status: 'limit_reached', spendLimitAud: '2' });
  });

  it('starts a key with a zero limit as limit_reached', async () => {
    expect((await mb.keys.create.mutate({ name: 'zero', spendLimitAud: '0' })).key.status).toBe('limit_reached');
  });

  it('judges expiry at read time, at the expiry instant, before any job has run', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'short-lived', expiresAt: isoIn(clock.now(), 3600) });
    clock.advance(3599_999);
    expect((await mb.keys.get.query({ id: key.id })).status).toBe('active');
    clock.advance(1);
    expect((await mb.keys.get.query({ id: key.id })).status).toBe('expired');
    expect((await app.t.db('api_keys').where({ id: key.id }).first()).status).toBe('active');
    expect((await mb.keys.list.query({ status: 'expired' })).map((k) => k.id)).toContain(key.id);
    expect((await mb.keys.list.query({ status: 'active' })).map((k) => k.id)).not.toContain(key.id);

    await expectTrpcError(mb.keys.update.mutate({ id: key.id, spendLimitAud: '100' }), 'CONFLICT');
    await expectTrpcError(mb.keys.rotate.mutate({ id: key.id }), 'CONFLICT');
    expect((await mb.keys.revoke.mutate({ id: key.id })).status).toBe('revoked');
  });

  it('makes revocation immediate and terminal', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'to revoke', spendLimitAud: '3' });
    const revoked = await mb.keys.revoke.mutate({ id: key.id });
    expect(revoked.status).toBe('revoked');
    expect(revoked.revokedAt).toBe(clock.now().toISOString());
    clock.advance(1000);
    expect(await mb.keys.revoke.mutate({ id: key.id })).toEqual(revoked);
    await expectTrpcError(mb.keys.update.mutate({ id: key.id, name: 'back to life?' }), 'CONFLICT');
    await expectTrpcError(mb.keys.update.mutate({ id: key.id, spendLimitAud: null }), 'CONFLICT');
    await expectTrpcError(mb.keys.rotate.mutate({ id: key.id, gracePeriodSeconds: 60 }), 'CONFLICT');
    expect(await mb.keys.get.query({ id: key.id })).toEqual(revoked);
  });

  it('rotates with grace 0: a successor with the same name, limit and expiry, and the old key revoked now', async () => {
    const expiresAt = isoIn(clock.now(), 7 * 86_400);
    const { key: old, secret: oldSecret } = await mb.keys.create.mutate({ name: 'ci', spendLimitAud: '7.25', expiresAt });
    const { key, secret, previous } = await mb.keys.rotate.mutate({ id: old.id, gracePeriodSeconds: 0 });
    expect(secret).not.toBe(oldSecret);
    expect(secret.endsWith(key.last4)).toBe(true);
    expect(key.id).not.toBe(old.id);
    expect(key).toMatchObject({ name: 'ci', spendLimitAud: '7.25', expiresAt, teamId: null, ownerId: alice.user.id, status: 'active', spendAud: '0' });
    expect(previous).toMatchObject({ id: old.id, status: 'revoked', revokedAt: clock.now().toISOString() });
    const row = await app.t.db('api_keys').where({ id: old.id }).first();
    expect(row.rotated_to_id).toBe(key.id);
  });

  it('rotates with a grace period: the old key works until it ends, then reads as revoked at that instant', async () => {
    const { key: old } = await mb.keys.create.mutate({ name: 'rolling' });
    const { key, previous } = await mb.keys.rotate.mutate({ id: old.id, gracePeriodSeconds: 3600 });
    const retiresAt = isoIn(clock.now(), 3600);
    expect(previous).toMatchObject({ status: 'active', revokedAt: null });
    await expectTrpcError(mb.keys.rotate.mutate({ id: old.id }), 'CONFLICT');

    clock.advance(3599_999);
    expect((await mb.keys.get.query({ id: old.id })).status).toBe('active');
    clock.advance(1);
    expect(await mb.keys.get.query({ id: old.id })).toMatchObject({ status: 'revoked', revokedAt: retiresAt });
    expect((await mb.keys.get.query({ id: key.id })).status).toBe('active');
    await expectTrpcError(mb.keys.rotate.mutate({ id: old.id }), 'CONFLICT');
    await expectTrpcError(mb.keys.update.mutate({ id: old.id, spendLimitAud: '1' }), 'CONFLICT');

    // The successor rotates in turn.
    const next = await mb.keys.rotate.mutate({ id: key.id, gracePeriodSeconds: 0 });
    expect(next.key.name).toBe('rolling');
  });

  it('rotates a key at its limit into an active successor with the same limit', async () => {
    const { key: old } = await mb.keys.create.mutate({ name: 'spent', spendLimitAud: '1' });
    await settleSpend(old.id, 1_000_000, 'limit_reached');
    const { key } = await mb.keys.rotate.mutate({ id: old.id });
    expect(key).toMatchObject({ status: 'active', spendLimitAud: '1', spendAud: '0' });
  });

  it('keeps a team key in its team when rotating', async () => {
    const team = await makeTeam(app.services, alice);
    const { key: old } = await mb.keys.create.mutate({ name: 'team ci', teamId: team.id });
    const { key } = await mb.keys.rotate.mutate({ id: old.id, gracePeriodSeconds: 10 });
    expect(key.teamId).toBe(team.id);
  });

  it('refuses grace periods that are negative, fractional or longer than 30 days', async () => {
    const { key } = await mb.keys.create.mutate({ name: 'grace' });
    for (const gracePeriodSeconds of [-1, 1.5, 30 * 86_400 + 1]) await expectTrpcError(mb.keys.rotate.mutate({ id: key.id, gracePeriodSeconds }), 'BAD_REQUEST');
    expect((await mb.keys.get.query({ id: key.id })).status).toBe('active');
  });

  it('lists keys newest first and filters by status', async () => {
    await mb.keys.create.mutate({ name: 'expires soon', expiresAt: isoIn(clock.now(), 1) });
    clock.advance(1000);
    const all = await mb.keys.list.query();
    const created = all.map((k) => k.createdAt);
    expect([...created].sort().reverse()).toEqual(created);
    for (const status of ['active', 'revoked', 'expired', 'limit_reached'] as const) {
      const some = await mb.keys.list.query({ status });
      expect(some.length).toBeGreaterThan(0);
      expect(some.every((k) => k.status === status)).toBe(true);
    }
  });
});
