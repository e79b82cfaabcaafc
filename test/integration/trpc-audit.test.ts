import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeUser, type TestUser } from '../support/factories.js';
import { bearer, rawCall, sessionCookieFor, tokenFor } from '../support/trpc.js';

const USER_AGENT = 'audit-check/1.0';

describe(`audit trail of changes made over tRPC (${dialect})`, () => {
  let app: TestApp;
  let alice: TestUser;
  let admin: TestUser;
  let bob: TestUser;
  let aliceHeaders: Record<string, string>;
  let adminHeaders: Record<string, string>;

  /** Runs one mutation and returns the audit rows it wrote. */
  async function audited(path: string, input: unknown, headers: Record<string, string>) {
    const last = await app.t.db('audit_events').max({ id: 'id' }).first();
    const res = await rawCall(app, 'mutation', path, input, { 'user-agent': USER_AGENT, ...headers });
    expect(res.status, `${path}: ${res.text}`).toBe(200);
    const rows = await app.t.db('audit_events').where('id', '>', Number(last?.id ?? 0)).orderBy('id');
    return { data: res.body.result.data, rows };
  }

  function expectRow(row: Record<string, unknown> | undefined, want: { action: string; targetType: string; targetId: string; actor: TestUser; kind: 'token' | 'user' }) {
    expect(row).toMatchObject({ action: want.action, target_type: want.targetType, target_id: want.targetId, actor_id: want.actor.user.id, actor_kind: want.kind, user_agent: USER_AGENT });
    expect(String(row!.ip)).toMatch(/127\.0\.0\.1$/);
  }

  beforeAll(async () => {
    app = await startTestApp();
    alice = await makeUser(app.services);
    admin = await makeUser(app.services, { admin: true });
    bob = await makeUser(app.services);
    aliceHeaders = bearer(await tokenFor(app, alice));
    adminHeaders = bearer(await tokenFor(app, admin));
  });
  afterAll(async () => app.close());

  it('audits every key change: create, update, rotate, revoke', async () => {
    const created = await audited('keys.create', { name: 'audited', spendLimitAud: '2' }, aliceHeaders);
    const id = created.data.key.id;
    expect(created.rows).toHaveLength(1);
    expectRow(created.rows[0], { action: 'key.create', targetType: 'key', targetId: id, actor: alice, kind: 'token' });
    expect(JSON.parse(created.rows[0].details)).toEqual({ name: 'audited', teamId: null, spendLimitMicro: 2_000_000, expiresAt: null });

    const updated = await audited('keys.update', { id, spendLimitAud: '3' }, aliceHeaders);
    expectRow(updated.rows[0], { action: 'key.update', targetType: 'key', targetId: id, actor: alice, kind: 'token' });
    expect(JSON.parse(updated.rows[0].details)).toMatchObject({ spendLimitMicro: 3_000_000, from: 2_000_000 });

    const rotated = await audited('keys.rotate', { id, gracePeriodSeconds: 60 }, aliceHeaders);
    expectRow(rotated.rows[0], { action: 'key.rotate', targetType: 'key', targetId: id, actor: alice, kind: 'token' });
    expect(JSON.parse(rotated.rows[0].details)).toEqual({ successorId: rotated.data.key.id, gracePeriodSeconds: 60 });

    const revoked = await audited('keys.revoke', { id: rotated.data.key.id }, aliceHeaders);
    expect(revoked.rows).toHaveLength(1);
    expectRow(revoked.rows[0], { action: 'key.revoke', targetType: 'key', targetId: rotated.data.key.id, actor: alice, kind: 'token' });
  });

  it('audits changes made with a session cookie as the user, not a token', async () => {
    const cookie = await sessionCookieFor(app, alice);
    const created = await audited('keys.create', { name: 'from the browser' }, { cookie, origin: app.url });
    expectRow(created.rows[0], { action: 'key.create', targetType: 'key', targetId: created.data.key.id, actor: alice, kind: 'user' });
  });

  it('audits every team change: create, add member, change role, remove member', async () => {
    const created = await audited('teams.create', { name: 'Audited team' }, aliceHeaders);
    const teamId = created.data.id;
    expectRow(created.rows[0], { action: 'team.create', targetType: 'team', targetId: teamId, actor: alice, kind: 'token' });

    const added = await audited('teams.addMember', { teamId, email: bob.email, role: 'member' }, aliceHeaders);
    expectRow(added.rows[0], { action: 'team.member_add', targetType: 'team', targetId: teamId, actor: alice, kind: 'token' });
    expect(JSON.parse(added.rows[0].details)).toEqual({ userId: bob.user.id, role: 'member' });

    const role = await audited('teams.setRole', { teamId, userId: bob.user.id, role: 'admin' }, aliceHeaders);
    expect(JSON.parse(role.rows[0].details)).toEqual({ userId: bob.user.id, from: 'member', to: 'admin' });
    expectRow(role.rows[0], { action: 'team.member_role', targetType: 'team', targetId: teamId, actor: alice, kind: 'token' });

    const removed = await audited('teams.removeMember', { teamId, userId: bob.user.id }, aliceHeaders);
    expectRow(removed.rows[0], { action: 'team.member_remove', targetType: 'team', targetId: teamId, actor: alice, kind: 'token' });
  });

  it('audits management tokens being created and revoked', async () => {
    const created = await audited('tokens.create', { name: 'audited token' }, aliceHeaders);
    expectRow(created.rows[0], { action: 'token.create', targetType: 'token', targetId: created.data.token.id, actor: alice, kind: 'token' });
    const revoked = await audited('tokens.revoke', { id: created.data.token.id }, aliceHeaders);
    expectRow(revoked.rows[0], { action: 'token.revoke', targetType: 'token', targetId: created.data.token.id, actor: alice, kind: 'token' });
    const again = await audited('tokens.revoke', { id: created.data.token.id }, aliceHeaders);
    expect(again.rows).toHaveLength(0);
  });

  it('audits balance top-ups for users and teams', async () => {
    const user = await audited('admin.credit', { userId: alice.user.id, amountAud: '5', note: 'PO 7' }, adminHeaders);
    expectRow(user.rows[0], { action: 'balance.credit', targetType: 'user', targetId: alice.user.id, actor: admin, kind: 'token' });
    expect(JSON.parse(user.rows[0].details)).toEqual({ amountMicro: 5_000_000, note: 'PO 7' });
    const team = (await rawCall(app, 'mutation', 'teams.create', { name: 'Funded' }, aliceHeaders)).body.result.data;
    const teamCredit = await audited('admin.credit', { teamId: team.id, amountAud: '1.5' }, adminHeaders);
    expectRow(teamCredit.rows[0], { action: 'balance.credit', targetType: 'team', targetId: team.id, actor: admin, kind: 'token' });
  });

  it('audits user administration: plan changes and disabling', async () => {
    const plan = await audited('admin.users.setPlan', { userId: bob.user.id, planId: 'plan_pro' }, adminHeaders);
    expectRow(plan.rows[0], { action: 'user.set_plan', targetType: 'user', targetId: bob.user.id, actor: admin, kind: 'token' });
    const disabled = await audited('admin.users.disable', { userId: bob.user.id }, adminHeaders);
    expectRow(disabled.rows[0], { action: 'user.disable', targetType: 'user', targetId: bob.user.id, actor: admin, kind: 'token' });
  });

  it('writes nothing for refused changes', async () => {
    const last = await app.t.db('audit_events').max({ id: 'id' }).first();
    const bobHeaders = bearer(await tokenFor(app, await makeUser(app.services)));
    const key = (await rawCall(app, 'mutation', 'keys.create', { name: 'alice only' }, aliceHeaders)).body.result.data.key;
    const afterCreate = await app.t.db('audit_events').max({ id: 'id' }).first();
    expect(Number(afterCreate!.id)).toBeGreaterThan(Number(last!.id ?? 0));
    for (const [path, input] of [['keys.revoke', { id: key.id }], ['keys.update', { id: key.id, name: 'x' }], ['keys.create', { name: '' }], ['admin.credit', { userId: alice.user.id, amountAud: '1' }]] as const)
      expect((await rawCall(app, 'mutation', path, input, bobHeaders)).status).toBeGreaterThanOrEqual(400);
    const after = await app.t.db('audit_events').max({ id: 'id' }).first();
    expect(Number(after!.id)).toBe(Number(afterCreate!.id));
  });
});
