import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { htmx, recordUsage, signIn, type PortalClient } from '../support/portal.js';
import type { TeamRole } from '../../src/domain/teams/roles.js';

/**
 * The team page per the role table (SPEC §4): everyone sees the balance and the members; owners and admins all team
 * keys and usage by member; members only their own keys and usage; viewers no keys. Managing members: owners
 * everyone, admins everyone but owners.
 */
describe('team pages follow the role table', () => {
  let app: TestApp;
  const people = {} as Record<TeamRole | 'outsider', TestUser>;
  const clients = {} as Record<TeamRole | 'outsider', PortalClient>;
  let teamId: string;

  beforeAll(async () => {
    app = await startTestApp();
    for (const role of ['owner', 'admin', 'member', 'viewer', 'outsider'] as const) {
      people[role] = await makeUser(app.services, { email: `${role}@teams.test` });
      clients[role] = await signIn(app, people[role].email, people[role].password);
    }
    const team = await makeTeam(app.services, people.owner, {
      name: 'Research', balanceMicro: 31_250_000,
      members: [[people.admin, 'admin'], [people.member, 'member'], [people.viewer, 'viewer']],
    });
    teamId = team.id;
    const ownerKey = await makeKey(app.services, people.owner, { name: 'owner-team-key', teamId });
    const memberKey = await makeKey(app.services, people.member, { name: 'member-team-key', teamId });
    await recordUsage(app.services, ownerKey.key.id, 2_000_000);
    await recordUsage(app.services, memberKey.key.id, 500_000);
  });
  afterAll(() => app.close());

  const page = (role: TeamRole | 'outsider') => clients[role].get(`/teams/${teamId}`);

  it('shows every member the balance and the member list', async () => {
    for (const role of ['owner', 'admin', 'member', 'viewer'] as const) {
      const res = await page(role);
      expect(res.status, role).toBe(200);
      expect(res.text, role).toContain('A$31.25'.replace('31.25', (31.25 - 2.5).toFixed(2)));
      expect(res.text, role).toContain('viewer@teams.test');
    }
  });

  it('shows owners and admins all team keys and usage by member', async () => {
    for (const role of ['owner', 'admin'] as const) {
      const res = await page(role);
      expect(res.text, role).toContain('owner-team-key');
      expect(res.text, role).toContain('member-team-key');
      expect(res.text, role).toContain('Usage by member');
      expect(res.text, role).toContain('A$2.00');
      expect(res.text, role).toContain('A$0.50');
    }
  });

  it('shows members only their own keys and usage', async () => {
    const res = await page('member');
    expect(res.text).toContain('member-team-key');
    expect(res.text).not.toContain('owner-team-key');
    expect(res.text).toContain('Your usage');
    expect(res.text).not.toContain('Usage by member');
    expect(res.text).not.toContain('A$2.00');
    expect((await clients.member.get(`/usage?team=${teamId}`)).text).not.toContain('owner-team-key');
    expect((await clients.member.get('/keys')).text).not.toContain('owner-team-key');
  });

  it('shows viewers no keys and no usage', async () => {
    const res = await page('viewer');
    expect(res.text).not.toContain('owner-team-key');
    expect(res.text).not.toContain('member-team-key');
    expect(res.text).not.toContain('Usage by member');
    expect(res.text).not.toContain('Create a team key');
    const usage = await clients.viewer.get(`/usage?team=${teamId}`);
    expect(usage.status).toBe(200);
    expect(usage.text).not.toContain('team-key');
  });

  it('hides the team from outsiders (404, not 403)', async () => {
    expect((await page('outsider')).status).toBe(404);
    expect((await clients.outsider.get(`/usage?team=${teamId}`)).status).toBe(404);
    expect((await clients.outsider.get('/teams')).text).not.toContain('Research');
    expect((await clients.outsider.post(`/teams/${teamId}/members`, { email: 'outsider@teams.test', role: 'owner' })).status).toBe(404);
  });

  it('offers member management only to owners and admins, with the roles each may grant', async () => {
    const owner = await page('owner');
    expect(owner.text).toContain('Add member');
    expect(owner.text).toContain('<option value="owner"');
    const admin = await page('admin');
    expect(admin.text).toContain('Add member');
    expect(admin.text).not.toContain('<option value="owner"');
    expect(admin.text).not.toContain(`/members/${people.owner.user.id}/remove"`);
    for (const role of ['member', 'viewer'] as const) {
      const res = await page(role);
      expect(res.text, role).not.toContain('Add member');
      expect(res.text, role).not.toContain('Remove');
    }
  });

  it('enforces the table on the server too', async () => {
    const dave = await makeUser(app.services, { email: 'dave@teams.test' });
    expect((await clients.member.post(`/teams/${teamId}/members`, { email: dave.email, role: 'member' })).status).toBe(403);
    expect((await clients.viewer.post(`/teams/${teamId}/members/${people.member.user.id}/role`, { role: 'owner' })).status).toBe(403);
    expect((await clients.admin.post(`/teams/${teamId}/members`, { email: dave.email, role: 'owner' })).status).toBe(403);
    expect((await clients.admin.post(`/teams/${teamId}/members/${people.owner.user.id}/role`, { role: 'viewer' })).status).toBe(403);
    expect((await clients.admin.post(`/teams/${teamId}/members/${people.owner.user.id}/remove`)).status).toBe(403);
    const members = (await app.services.teams.get(teamId, people.owner.actor)).members;
    expect(members.find((m) => m.userId === people.owner.user.id)?.role).toBe('owner');
    expect(members.some((m) => m.email === dave.email)).toBe(false);
  });

  it('adds, re-roles and removes members (303 without JavaScript, the members fragment with htmx)', async () => {
    const erin = await makeUser(app.services, { email: 'erin@teams.test' });
    const added = await clients.admin.post(`/teams/${teamId}/members`, { email: 'ERIN@teams.test', role: 'member' });
    expect(added.status).toBe(303);
    expect(added.headers.location).toBe(`/teams/${teamId}?done=member_added`);
    // What htmx receives after following that redirect: just the members card, with the notice.
    const fragment = await clients.admin.get(`/teams/${teamId}?done=member_added`, htmx);
    expect(fragment.text).toMatch(/^\s*<section class="card" id="team-members"/);
    expect(fragment.text).toContain('Member added.');
    expect(fragment.text).toContain('erin@teams.test');

    const missing = await clients.admin.post(`/teams/${teamId}/members`, { email: 'nobody@teams.test', role: 'member' }, htmx);
    expect(missing.status).toBe(400); // shown at the e-mail field (issue #15, point 14)
    const dup = await clients.admin.post(`/teams/${teamId}/members`, { email: erin.email, role: 'member' }, htmx);
    expect(dup.status).toBe(409);
    expect(dup.text).toContain('already a member');
    expect(dup.text).not.toContain('<html');
    const badRole = await clients.admin.post(`/teams/${teamId}/members`, { email: erin.email, role: 'emperor' });
    expect(badRole.status).toBe(400);
    expect(badRole.text).toContain('Choose a role');

    const erinKey = await makeKey(app.services, erin, { name: 'erin-key', teamId });
    expect((await clients.admin.post(`/teams/${teamId}/members/${erin.user.id}/role`, { role: 'viewer' })).status).toBe(303);
    expect((await app.services.teams.get(teamId, people.owner.actor)).members.find((m) => m.userId === erin.user.id)?.role).toBe('viewer');
    expect((await clients.admin.post(`/teams/${teamId}/members/${erin.user.id}/remove`)).headers.location).toBe(`/teams/${teamId}?done=member_removed`);
    expect((await app.services.keys.get(erinKey.key.id, people.owner.actor)).status).toBe('revoked');
  });

  it('lets a member leave, but not the last owner', async () => {
    const frank = await makeUser(app.services, { email: 'frank@teams.test' });
    await app.services.teams.addMember(teamId, frank.email, 'member', people.owner.actor);
    const frankClient = await signIn(app, frank.email, frank.password);
    const left = await frankClient.post(`/teams/${teamId}/members/${frank.user.id}/remove`);
    expect(left.headers.location).toBe('/teams?done=left');
    const ownerLeaves = await clients.owner.post(`/teams/${teamId}/members/${people.owner.user.id}/remove`);
    expect(ownerLeaves.status).toBe(409);
    expect(ownerLeaves.text).toContain('at least one owner');
  });

  it('creates a team with the creator as owner', async () => {
    const res = await clients.outsider.post('/teams', { name: '  Skunkworks ' });
    expect(res.status).toBe(303);
    const [team] = await app.services.teams.list(people.outsider.actor);
    expect(team).toMatchObject({ name: 'Skunkworks', role: 'owner' });
    expect(res.headers.location).toBe(`/teams/${team!.id}?done=team_created`);
    const empty = await clients.outsider.post('/teams', { name: ' ' });
    expect(empty.status).toBe(400);
    expect(empty.text).toContain('A team name is 1 to 100 characters.');
  });

  it('an unknown e-mail when adding a member is shown at the field, form kept, page or fragment', async () => {
    for (const headers of [{}, htmx]) {
      const res = await clients.owner.post(`/teams/${teamId}/members`, { email: 'nobody@teams.test', role: 'member' }, headers);
      expect(res.status).toBe(400);
      expect(res.text).toMatch(/<input id="member-email"[^>]*value="nobody@teams.test"[^>]*aria-invalid="true"[^>]*aria-describedby="member-email-error"/);
      expect(res.text).toContain('id="member-email-error"');
      expect(res.text).toContain('No account uses nobody@teams.test');
    }
  });
});
