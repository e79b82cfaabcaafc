import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { adminActor, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

interface Person {
  u: TestUser;
  mb: ModelBridgeClient;
}

describe(`team membership over tRPC (${dialect})`, () => {
  let app: TestApp;
  let owner: Person, admin: Person, member: Person, viewer: Person, outsider: Person, newcomer: Person;
  let teamId: string;

  async function person(): Promise<Person> {
    const u = await makeUser(app.services);
    return { u, mb: await clientFor(app, u) };
  }
  const roleOf = async (userId: string) => (await owner.mb.teams.get.query({ id: teamId })).members.find((m) => m.userId === userId)?.role;

  beforeAll(async () => {
    app = await startTestApp();
    [owner, admin, member, viewer, outsider, newcomer] = await Promise.all([person(), person(), person(), person(), person(), person()]);
  });
  afterAll(async () => app.close());

  beforeEach(async () => {
    const team = await owner.mb.teams.create.mutate({ name: '  Platform  ' });
    teamId = team.id;
    await owner.mb.teams.addMember.mutate({ teamId, email: admin.u.email, role: 'admin' });
    await owner.mb.teams.addMember.mutate({ teamId, email: member.u.email.toUpperCase(), role: 'member' });
    await owner.mb.teams.addMember.mutate({ teamId, email: viewer.u.email, role: 'viewer' });
  });

  it('creates a team with the creator as owner and lists it with each caller’s role and the balance', async () => {
    const team = await owner.mb.teams.get.query({ id: teamId });
    expect(team).toMatchObject({ id: teamId, name: 'Platform', balanceAud: '0', role: 'owner' });
    expect(team.members.map((m) => [m.userId, m.role])).toEqual([
      [owner.u.user.id, 'owner'],
      [admin.u.user.id, 'admin'],
      [member.u.user.id, 'member'],
      [viewer.u.user.id, 'viewer'],
    ]);
    expect(Object.keys(team.members[0]!).sort()).toEqual(['email', 'name', 'role', 'userId']);
    await app.services.balances.credit({ teamId }, 2_500_000, null, adminActor);
    for (const [p, role] of [[viewer, 'viewer'], [member, 'member']] as const) {
      const listed = (await p.mb.teams.list.query()).find((t) => t.id === teamId);
      expect(listed).toEqual({ id: teamId, name: 'Platform', balanceAud: '2.5', role });
    }
  });

  it('hides the team from non-members (NOT_FOUND), whatever they try', async () => {
    await expectTrpcError(outsider.mb.teams.get.query({ id: teamId }), 'NOT_FOUND');
    await expectTrpcError(outsider.mb.teams.addMember.mutate({ teamId, email: outsider.u.email, role: 'owner' }), 'NOT_FOUND');
    await expectTrpcError(outsider.mb.teams.setRole.mutate({ teamId, userId: outsider.u.user.id, role: 'owner' }), 'NOT_FOUND');
    expect((await outsider.mb.teams.list.query()).map((t) => t.id)).not.toContain(teamId);
  });

  it('does not reveal who is in a team to a non-member removing someone', async () => {
    const ofMember = await expectTrpcError(outsider.mb.teams.removeMember.mutate({ teamId, userId: member.u.user.id }), 'NOT_FOUND');
    const ofStranger = await expectTrpcError(outsider.mb.teams.removeMember.mutate({ teamId, userId: newcomer.u.user.id }), 'NOT_FOUND');
    expect(ofMember.message).toBe(ofStranger.message);
    expect(await roleOf(member.u.user.id)).toBe('member');
  });

  it('lets owners add any role and admins add anything but owners; members and viewers add nobody', async () => {
    await expectTrpcError(admin.mb.teams.addMember.mutate({ teamId, email: newcomer.u.email, role: 'owner' }), 'FORBIDDEN');
    expect(await admin.mb.teams.addMember.mutate({ teamId, email: newcomer.u.email, role: 'admin' })).toMatchObject({ userId: newcomer.u.user.id, role: 'admin' });
    await owner.mb.teams.removeMember.mutate({ teamId, userId: newcomer.u.user.id });
    for (const p of [member, viewer]) await expectTrpcError(p.mb.teams.addMember.mutate({ teamId, email: newcomer.u.email, role: 'viewer' }), 'FORBIDDEN');
    expect(await owner.mb.teams.addMember.mutate({ teamId, email: newcomer.u.email, role: 'owner' })).toMatchObject({ role: 'owner' });
  });

  it('refuses unknown e-mail addresses (NOT_FOUND) and existing members (CONFLICT)', async () => {
    await expectTrpcError(owner.mb.teams.addMember.mutate({ teamId, email: 'nobody@example.test', role: 'member' }), 'NOT_FOUND');
    await expectTrpcError(owner.mb.teams.addMember.mutate({ teamId, email: member.u.email, role: 'viewer' }), 'CONFLICT');
  });

  it('lets admins change roles below owner, but never touch an owner or make one', async () => {
    expect((await admin.mb.teams.setRole.mutate({ teamId, userId: member.u.user.id, role: 'viewer' })).role).toBe('viewer');
    await expectTrpcError(admin.mb.teams.setRole.mutate({ teamId, userId: owner.u.user.id, role: 'member' }), 'FORBIDDEN');
    await expectTrpcError(admin.mb.teams.setRole.mutate({ teamId, userId: member.u.user.id, role: 'owner' }), 'FORBIDDEN');
    await expectTrpcError(admin.mb.teams.setRole.mutate({ teamId, userId: admin.u.user.id, role: 'owner' }), 'FORBIDDEN');
    await expectTrpcError(member.mb.teams.setRole.mutate({ teamId, userId: viewer.u.user.id, role: 'member' }), 'FORBIDDEN');
    expect(await roleOf(owner.u.user.id)).toBe('owner');
  });

  it('keeps at least one owner: the last owner can neither step down nor leave, until another owner exists', async () => {
    await expectTrpcError(owner.mb.teams.setRole.mutate({ teamId, userId: owner.u.user.id, role: 'admin' }), 'CONFLICT');
    await expectTrpcError(owner.mb.teams.removeMember.mutate({ teamId, userId: owner.u.user.id }), 'CONFLICT');
    await owner.mb.teams.setRole.mutate({ teamId, userId: admin.u.user.id, role: 'owner' });
    expect((await owner.mb.teams.setRole.mutate({ teamId, userId: owner.u.user.id, role: 'member' })).role).toBe('member');
    await expectTrpcError(admin.mb.teams.removeMember.mutate({ teamId, userId: admin.u.user.id }), 'CONFLICT');
  });

  it('lets admins remove members but not owners; members and viewers may only leave themselves', async () => {
    await expectTrpcError(admin.mb.teams.removeMember.mutate({ teamId, userId: owner.u.user.id }), 'FORBIDDEN');
    await expectTrpcError(member.mb.teams.removeMember.mutate({ teamId, userId: viewer.u.user.id }), 'FORBIDDEN');
    await viewer.mb.teams.removeMember.mutate({ teamId, userId: viewer.u.user.id });
    await expectTrpcError(viewer.mb.teams.get.query({ id: teamId }), 'NOT_FOUND');
    expect(await admin.mb.teams.removeMember.mutate({ teamId, userId: member.u.user.id })).toEqual({ teamId, userId: member.u.user.id, removed: true });
    expect(await roleOf(member.u.user.id)).toBeUndefined();
  });

  it("revokes a removed member's team keys, and only those", async () => {
    const teamKey = (await member.mb.keys.create.mutate({ name: 'member team key', teamId })).key;
    const personal = (await member.mb.keys.create.mutate({ name: 'member personal key' })).key;
    const adminsKey = (await admin.mb.keys.create.mutate({ name: 'admin team key', teamId })).key;
    await owner.mb.teams.removeMember.mutate({ teamId, userId: member.u.user.id });
    expect((await owner.mb.keys.get.query({ id: teamKey.id })).status).toBe('revoked');
    await expectTrpcError(member.mb.keys.get.query({ id: teamKey.id }), 'NOT_FOUND');
    expect((await member.mb.keys.get.query({ id: personal.id })).status).toBe('active');
    expect((await owner.mb.keys.get.query({ id: adminsKey.id })).status).toBe('active');
    const audit = await app.t.db('audit_events').where({ action: 'team.member_remove', target_id: teamId }).orderBy('id', 'desc').first();
    expect(JSON.parse(audit.details)).toEqual({ userId: member.u.user.id, keysRevoked: 1 });
  });
});
