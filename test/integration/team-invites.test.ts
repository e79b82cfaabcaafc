import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeTeam, makeUser, TEST_PASSWORD, type TestUser } from '../support/factories.js';
import { portalClient, sessionCookieOf, signIn, type PortalClient } from '../support/portal.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

/** The token in an invite URL the team page or the API showed. */
const tokenOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);
const linkIn = (html: string) => /<code id="invite-link" data-secret>([^<]+)<\/code>/.exec(html)?.[1] ?? null;

/**
 * Team invitations (issue #15, point 14): owners and admins invite by e-mail; the one-time link is shown once and
 * only its SHA-256 stored; an existing user signs in and accepts, a new visitor creates the account from the page;
 * used, expired and withdrawn links get a clear page.
 */
describe('team invitations', () => {
  let app: TestApp;
  let owner: TestUser, admin: TestUser, member: TestUser, outsider: TestUser;
  let ownerClient: PortalClient;
  let teamId: string;

  beforeAll(async () => {
    app = await startTestApp();
    owner = await makeUser(app.services, { email: 'owner@invites.test' });
    admin = await makeUser(app.services, { email: 'admin@invites.test' });
    member = await makeUser(app.services, { email: 'member@invites.test' });
    outsider = await makeUser(app.services, { email: 'outsider@invites.test' });
    teamId = (await makeTeam(app.services, owner, { name: 'Atlas', members: [[admin, 'admin'], [member, 'member']] })).id;
    ownerClient = await signIn(app, owner.email, owner.password);
  });
  afterAll(() => app.close());

  it('shows the link once to the inviter, stores only its SHA-256, lists it as pending and audits it', async () => {
    const res = await ownerClient.post(`/teams/${teamId}/invites`, { email: ' Grace@Invites.test ', role: 'viewer' });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const url = linkIn(res.text);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/invite\/[A-Za-z0-9_-]{43}$/);
    const token = tokenOf(url!);
    const rows = await app.services.db('team_invites').where({ team_id: teamId });
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(token);
    const again = await ownerClient.get(`/teams/${teamId}`);
    expect(again.text).toContain('grace@invites.test');
    expect(linkIn(again.text)).toBeNull();
    expect(again.text).not.toContain(token);
    const audit = await app.services.audit.list(app.services.db, { targetId: teamId });
    expect(audit.find((e) => e.action === 'team.invite_create')?.details).toMatchObject({ email: 'grace@invites.test', role: 'viewer' });
    expect(JSON.stringify(audit)).not.toContain(token);
  });

  it('lets only owners and admins invite, and admins not as owner', async () => {
    const memberClient = await signIn(app, member.email, member.password);
    expect((await memberClient.post(`/teams/${teamId}/invites`, { email: 'x@invites.test', role: 'member' })).status).toBe(403);
    expect((await memberClient.get(`/teams/${teamId}`)).text).not.toContain('Create invitation link');
    const outsiderClient = await signIn(app, outsider.email, outsider.password);
    expect((await outsiderClient.post(`/teams/${teamId}/invites`, { email: 'x@invites.test', role: 'member' })).status).toBe(404);
    const adminClient = await signIn(app, admin.email, admin.password);
    expect((await adminClient.post(`/teams/${teamId}/invites`, { email: 'x@invites.test', role: 'owner' })).status).toBe(403);
    expect((await adminClient.post(`/teams/${teamId}/invites`, { email: 'x@invites.test', role: 'member' })).status).toBe(201);
    const bad = await ownerClient.post(`/teams/${teamId}/invites`, { email: 'not an address', role: 'member' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('valid e-mail');
    const already = await ownerClient.post(`/teams/${teamId}/invites`, { email: member.email, role: 'member' });
    expect(already.status).toBe(409);
  });

  it('lets an existing user sign in and accept, then the link is spent', async () => {
    const carol = await makeUser(app.services, { email: 'carol@invites.test' });
    const { token } = await app.services.invites.create(teamId, carol.email, 'member', owner.actor);
    const anonymous = await portalClient(app).get(`/invite/${token}`);
    expect(anonymous.status).toBe(200);
    expect(anonymous.headers['cache-control']).toBe('no-store');
    expect(anonymous.text).toContain('Sign in to accept');
    expect(anonymous.text).toContain(`/login?next=${encodeURIComponent(`/invite/${token}`)}`);

    const wrong = await signIn(app, outsider.email, outsider.password);
    expect((await wrong.get(`/invite/${token}`)).text).toContain('but this invitation is for');
    expect((await wrong.post(`/invite/${token}/accept`)).status).toBe(403);

    const carolClient = await signIn(app, carol.email, carol.password);
    expect((await carolClient.get(`/invite/${token}`)).text).toContain('Join Atlas');
    const accepted = await carolClient.post(`/invite/${token}/accept`);
    expect(accepted.status).toBe(303);
    expect(accepted.headers.location).toBe(`/teams/${teamId}?done=invite_accepted`);
    const team = await app.services.teams.get(teamId, owner.actor);
    expect(team.members.find((m) => m.email === carol.email)?.role).toBe('member');

    const used = await carolClient.get(`/invite/${token}`);
    expect(used.status).toBe(410);
    expect(used.text).toContain('already been used');
    const twice = await carolClient.post(`/invite/${token}/accept`);
    expect(twice.status).toBe(410);
    expect(twice.text).toContain('already been used');
  });

  it('lets a new visitor create the account from the invite page (open sign-up off) and join', async () => {
    const { token } = await app.services.invites.create(teamId, 'dana@invites.test', 'viewer', owner.actor);
    const page = await portalClient(app).get(`/invite/${token}`);
    expect(page.text).toContain('Create account and join');
    const short = await portalClient(app).post(`/invite/${token}/account`, { name: 'Dana', password: 'short' });
    expect(short.status).toBe(400);
    expect(await app.services.users.findByEmail('dana@invites.test')).toBeNull();
    // An e-mail field sent along is ignored: the account is for the invited address.
    const created = await portalClient(app).post(`/invite/${token}/account`, { name: 'Dana', email: 'mallory@invites.test', password: TEST_PASSWORD });
    expect(created.status).toBe(303);
    expect(created.headers.location).toBe('/teams?done=invite_accepted');
    const dana = portalClient(app, sessionCookieOf(created));
    expect((await dana.get('/teams')).text).toContain('Atlas');
    expect(await app.services.users.findByEmail('mallory@invites.test')).toBeNull();
    const team = await app.services.teams.get(teamId, owner.actor);
    expect(team.members.find((m) => m.email === 'dana@invites.test')?.role).toBe('viewer');
    expect((await portalClient(app).post(`/invite/${token}/account`, { name: 'Again', password: TEST_PASSWORD })).status).toBe(410);
  });

  it('answers unknown, expired and withdrawn links with a clear page, never a 5xx', async () => {
    for (const junk of ['nope', 'x'.repeat(43), '%00', 'a'.repeat(5000)]) {
      const res = await portalClient(app).get(`/invite/${junk}`);
      expect(res.status, junk).toBe(404);
      expect(res.text).toContain('This invitation link is not valid');
      expect((await portalClient(app).post(`/invite/${junk}/account`, { password: TEST_PASSWORD })).status, junk).toBe(404);
    }
    const expired = await app.services.invites.create(teamId, 'erin@invites.test', 'member', owner.actor);
    await app.services.db('team_invites').where({ id: expired.invite.id }).update({ expires_at: new Date(Date.now() - 1000) });
    const late = await portalClient(app).get(`/invite/${expired.token}`);
    expect(late.status).toBe(410);
    expect(late.text).toContain('has expired');
    expect((await portalClient(app).post(`/invite/${expired.token}/account`, { password: TEST_PASSWORD })).status).toBe(410);
    expect(await app.services.users.findByEmail('erin@invites.test')).toBeNull();

    const withdrawn = await app.services.invites.create(teamId, 'fred@invites.test', 'member', owner.actor);
    const revoke = await ownerClient.post(`/teams/${teamId}/invites/${withdrawn.invite.id}/revoke`);
    expect(revoke.status).toBe(303);
    const gone = await portalClient(app).get(`/invite/${withdrawn.token}`);
    expect(gone.status).toBe(410);
    expect(gone.text).toContain('withdrawn');
    expect((await ownerClient.get(`/teams/${teamId}`)).text).not.toContain('fred@invites.test');
    expect((await ownerClient.post(`/teams/${teamId}/invites/${withdrawn.invite.id}/revoke`)).status).toBe(409);
  });

  it('replaces an earlier link to the same address', async () => {
    const first = await app.services.invites.create(teamId, 'gus@invites.test', 'member', owner.actor);
    const second = await app.services.invites.create(teamId, 'gus@invites.test', 'viewer', owner.actor);
    expect((await portalClient(app).get(`/invite/${first.token}`)).status).toBe(410);
    expect((await portalClient(app).get(`/invite/${second.token}`)).status).toBe(200);
  });

  it('makes one membership of concurrent accepts of one link', async () => {
    const hal = await makeUser(app.services, { email: 'hal@invites.test' });
    const { token } = await app.services.invites.create(teamId, hal.email, 'member', owner.actor);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => app.services.invites.accept(token, hal.actor)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as Error).message).toContain('already been used');
    const rows = await app.services.db('team_members').where({ team_id: teamId, user_id: hal.user.id });
    expect(rows).toHaveLength(1);
    const audit = await app.services.audit.list(app.services.db, { targetId: teamId });
    expect(audit.filter((e) => e.action === 'team.invite_accept' && (e.details as { userId?: string }).userId === hal.user.id)).toHaveLength(1);
  });

  it('offers teams.invite, teams.invites and teams.revokeInvite over tRPC with the same rules', async () => {
    const api = await clientFor(app, owner);
    const made = await api.teams.invite.mutate({ teamId, email: 'ivy@invites.test', role: 'admin' });
    expect(made).toMatchObject({ teamId, email: 'ivy@invites.test', role: 'admin' });
    expect(made.url).toMatch(/\/invite\/[A-Za-z0-9_-]{43}$/);
    const pending = await api.teams.invites.query({ teamId });
    expect(pending.map((i) => i.email)).toContain('ivy@invites.test');
    expect(JSON.stringify(pending)).not.toContain(tokenOf(made.url));
    const memberApi = await clientFor(app, member);
    await expectTrpcError(memberApi.teams.invite.mutate({ teamId, email: 'x@invites.test', role: 'member' }), 'FORBIDDEN');
    await expectTrpcError(memberApi.teams.invites.query({ teamId }), 'FORBIDDEN');
    await expectTrpcError(memberApi.teams.revokeInvite.mutate({ teamId, inviteId: made.id }), 'FORBIDDEN');
    const outsiderApi = await clientFor(app, outsider);
    await expectTrpcError(outsiderApi.teams.invites.query({ teamId }), 'NOT_FOUND');
    expect(await api.teams.revokeInvite.mutate({ teamId, inviteId: made.id })).toMatchObject({ revoked: true });
    expect((await api.teams.invites.query({ teamId })).map((i) => i.email)).not.toContain('ivy@invites.test');
  });
});
