import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Key, ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { clientFor, expectTrpcError, insertUsageEvent } from '../support/trpc.js';

type Role = 'owner' | 'admin' | 'member' | 'viewer';

describe(`key visibility and IDOR over tRPC (${dialect})`, () => {
  let app: TestApp;
  const people = {} as Record<Role | 'member2' | 'outsider' | 'alice' | 'bob' | 'installAdmin', { u: TestUser; mb: ModelBridgeClient }>;
  let teamId: string;
  const teamKeys = {} as Record<'owner' | 'admin' | 'member' | 'member2', Key>;
  let alicePersonal: Key;

  async function person(admin = false) {
    const u = await makeUser(app.services, { admin });
    return { u, mb: await clientFor(app, u) };
  }
  const ids = (keys: Key[]) => keys.map((k) => k.id).sort();

  beforeAll(async () => {
    app = await startTestApp();
    for (const name of ['owner', 'admin', 'member', 'member2', 'viewer', 'outsider', 'alice', 'bob'] as const) people[name] = await person();
    people.installAdmin = await person(true);
    const team = await makeTeam(app.services, people.owner.u, {
      members: [[people.admin.u, 'admin'], [people.member.u, 'member'], [people.member2.u, 'member'], [people.viewer.u, 'viewer']],
    });
    teamId = team.id;
    for (const who of ['owner', 'admin', 'member', 'member2'] as const)
      teamKeys[who] = (await people[who].mb.keys.create.mutate({ name: `${who}'s team key`, teamId })).key;
    alicePersonal = (await people.alice.mb.keys.create.mutate({ name: 'alice personal', spendLimitAud: '10' })).key;
    for (const key of [...Object.values(teamKeys), alicePersonal]) await insertUsageEvent(app, key);
  });
  afterAll(async () => app.close());

  it("hides a user's personal key from everyone else: get, update, revoke, rotate, usage all say NOT_FOUND", async () => {
    for (const who of ['bob', 'owner', 'outsider'] as const) {
      const { mb } = people[who];
      await expectTrpcError(mb.keys.get.query({ id: alicePersonal.id }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.update.mutate({ id: alicePersonal.id, spendLimitAud: '1000' }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.revoke.mutate({ id: alicePersonal.id }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.rotate.mutate({ id: alicePersonal.id }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.usage.query({ id: alicePersonal.id }), 'NOT_FOUND');
      await expectTrpcError(mb.usage.list.query({ keyId: alicePersonal.id }), 'NOT_FOUND');
      expect(ids(await mb.keys.list.query())).not.toContain(alicePersonal.id);
      expect((await mb.usage.list.query()).items.map((e) => e.keyId)).not.toContain(alicePersonal.id);
    }
    expect(await people.alice.mb.keys.get.query({ id: alicePersonal.id })).toEqual(alicePersonal);
  });

  it('answers a foreign key and a non-existent key identically', async () => {
    const foreign = await expectTrpcError(people.bob.mb.keys.get.query({ id: alicePersonal.id }), 'NOT_FOUND');
    const missing = await expectTrpcError(people.bob.mb.keys.get.query({ id: 'doesNotExist00000000' }), 'NOT_FOUND');
    expect(foreign.message).toBe(missing.message);
  });

  it('shows team keys per the role table: owners and admins all, members their own, viewers none', async () => {
    const all = ids(Object.values(teamKeys));
    expect(ids(await people.owner.mb.keys.list.query({ teamId }))).toEqual(all);
    expect(ids(await people.admin.mb.keys.list.query({ teamId }))).toEqual(all);
    expect(ids(await people.member.mb.keys.list.query({ teamId }))).toEqual([teamKeys.member.id]);
    expect(await people.viewer.mb.keys.list.query({ teamId })).toEqual([]);
    await expectTrpcError(people.outsider.mb.keys.list.query({ teamId }), 'NOT_FOUND');
    // The unfiltered list applies the same rule.
    expect(ids(await people.member.mb.keys.list.query())).toEqual([teamKeys.member.id]);
    expect(ids(await people.admin.mb.keys.list.query())).toEqual(all);
    expect(await people.viewer.mb.keys.list.query()).toEqual([]);
  });

  it('lets owners and admins manage every team key, members only their own, viewers and outsiders none', async () => {
    await people.admin.mb.keys.get.query({ id: teamKeys.owner.id });
    expect((await people.admin.mb.keys.update.mutate({ id: teamKeys.member2.id, spendLimitAud: '3' })).spendLimitAud).toBe('3');
    expect((await people.owner.mb.keys.update.mutate({ id: teamKeys.admin.id, name: 'renamed by owner' })).name).toBe('renamed by owner');
    expect((await people.member.mb.keys.update.mutate({ id: teamKeys.member.id, spendLimitAud: '2' })).spendLimitAud).toBe('2');
    for (const who of ['member', 'viewer', 'outsider'] as const) {
      const { mb } = people[who];
      await expectTrpcError(mb.keys.get.query({ id: teamKeys.member2.id }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.update.mutate({ id: teamKeys.member2.id, spendLimitAud: '999' }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.revoke.mutate({ id: teamKeys.owner.id }), 'NOT_FOUND');
      await expectTrpcError(mb.keys.rotate.mutate({ id: teamKeys.admin.id }), 'NOT_FOUND');
    }
    expect((await people.owner.mb.keys.get.query({ id: teamKeys.member2.id })).spendLimitAud).toBe('3');
  });

  it('lets members create team keys, but not viewers (FORBIDDEN) or outsiders (NOT_FOUND)', async () => {
    expect((await people.member.mb.keys.create.mutate({ name: 'member made', teamId })).key.teamId).toBe(teamId);
    await expectTrpcError(people.viewer.mb.keys.create.mutate({ name: 'viewer made', teamId }), 'FORBIDDEN');
    await expectTrpcError(people.outsider.mb.keys.create.mutate({ name: 'outsider made', teamId }), 'NOT_FOUND');
  });

  it('shows team usage with the same rule as team keys', async () => {
    const keyIdsOf = async (mb: ModelBridgeClient) => [...new Set((await mb.usage.list.query({ teamId })).items.map((e) => e.keyId))].sort();
    expect(await keyIdsOf(people.owner.mb)).toEqual(ids(Object.values(teamKeys)));
    expect(await keyIdsOf(people.admin.mb)).toEqual(ids(Object.values(teamKeys)));
    expect(await keyIdsOf(people.member.mb)).toEqual([teamKeys.member.id]);
    expect(await keyIdsOf(people.viewer.mb)).toEqual([]);
    await expectTrpcError(people.outsider.mb.usage.list.query({ teamId }), 'NOT_FOUND');
    await expectTrpcError(people.member.mb.usage.list.query({ keyId: teamKeys.member2.id }), 'NOT_FOUND');
    await expectTrpcError(people.member.mb.keys.usage.query({ id: teamKeys.owner.id }), 'NOT_FOUND');
    expect((await people.admin.mb.keys.usage.query({ id: teamKeys.owner.id })).totals.requests).toBe(1);
  });

  it('refuses `all: true` to users who are not installation admins', async () => {
    await expectTrpcError(people.owner.mb.keys.list.query({ all: true }), 'FORBIDDEN');
    await expectTrpcError(people.owner.mb.usage.list.query({ all: true }), 'FORBIDDEN');
  });

  it('lets installation admins list every key and revoke any for incident response, audited, but not change or rotate them', async () => {
    const { mb } = people.installAdmin;
    expect(ids(await mb.keys.list.query({ all: true }))).toEqual(expect.arrayContaining([alicePersonal.id, ...ids(Object.values(teamKeys))]));
    expect(ids(await mb.keys.list.query())).not.toContain(alicePersonal.id);
    expect((await mb.usage.list.query({ all: true })).items.map((e) => e.keyId)).toContain(alicePersonal.id);
    expect((await mb.keys.get.query({ id: alicePersonal.id })).id).toBe(alicePersonal.id);
    await expectTrpcError(mb.keys.update.mutate({ id: alicePersonal.id, spendLimitAud: '1' }), 'NOT_FOUND');
    await expectTrpcError(mb.keys.rotate.mutate({ id: alicePersonal.id }), 'NOT_FOUND');

    expect((await mb.keys.revoke.mutate({ id: alicePersonal.id })).status).toBe('revoked');
    const audit = await app.t.db('audit_events').where({ action: 'key.revoke', target_id: alicePersonal.id }).first();
    expect(audit.actor_id).toBe(people.installAdmin.u.user.id);
    expect(JSON.parse(audit.details)).toEqual({ asInstallationAdmin: true });
    expect((await people.alice.mb.keys.get.query({ id: alicePersonal.id })).status).toBe('revoked');
  });
});
