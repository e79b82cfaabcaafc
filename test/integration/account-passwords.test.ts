import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeUser } from '../support/factories.js';
import { portalClient, signIn } from '../support/portal.js';
import { clientFor, expectTrpcError, rawCall, sessionCookieFor } from '../support/trpc.js';

const NEW_PASSWORD = 'a brand new passphrase';

describe(`passwords: change, admin reset link (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;

  beforeAll(async () => {
    clock = new ManualClock('2026-11-26T06:00:00.000Z');
    app = await startTestApp({ clock });
  });
  afterAll(async () => app.close());

  const sessionsOf = async (userId: string) => (await app.t.db('sessions').where({ user_id: userId })).length;
  const canSignIn = async (email: string, password: string) => (await portalClient(app).post('/login', { email, password })).status === 303;

  it('me.changePassword needs the current password and ends every other session (tRPC, session kept)', async () => {
    const alice = await makeUser(app.services);
    const other = await sessionCookieFor(app, alice);
    const current = await sessionCookieFor(app, alice);
    const headers = { cookie: current, origin: app.url };

    const wrong = await rawCall(app, 'mutation', 'me.changePassword', { currentPassword: 'not it at all', newPassword: NEW_PASSWORD }, headers);
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('current password is not right');
    const short = await rawCall(app, 'mutation', 'me.changePassword', { currentPassword: alice.password, newPassword: 'short' }, headers);
    expect(short.status).toBe(400);
    expect(await sessionsOf(alice.user.id)).toBe(2);

    const ok = await rawCall(app, 'mutation', 'me.changePassword', { currentPassword: alice.password, newPassword: NEW_PASSWORD }, headers);
    expect(ok.status).toBe(200);
    expect(await sessionsOf(alice.user.id)).toBe(1);
    expect((await portalClient(app, current).get('/')).status).toBe(200);
    expect((await portalClient(app, other).get('/')).status).toBe(303);
    expect(await canSignIn(alice.email, alice.password)).toBe(false);
    expect(await canSignIn(alice.email, NEW_PASSWORD)).toBe(true);
    const audit = await app.t.db('audit_events').where({ action: 'user.password_change', target_id: alice.user.id });
    expect(audit).toHaveLength(1);
    expect(audit[0].details ?? '').not.toContain(NEW_PASSWORD);
  });

  it('me.changePassword with a management token ends all of the user’s browser sessions', async () => {
    const bob = await makeUser(app.services);
    await sessionCookieFor(app, bob);
    const mb = await clientFor(app, bob);
    await expectTrpcError(mb.me.changePassword.mutate({ currentPassword: 'wrong password here', newPassword: NEW_PASSWORD }), 'BAD_REQUEST');
    await mb.me.changePassword.mutate({ currentPassword: bob.password, newPassword: NEW_PASSWORD });
    expect(await sessionsOf(bob.user.id)).toBe(0);
  });

  it('the portal form changes the password and signs other browsers out', async () => {
    const carol = await makeUser(app.services);
    const elsewhere = await signIn(app, carol.email, carol.password);
    const here = await signIn(app, carol.email, carol.password);
    expect((await here.get('/account/password')).text).toContain('Current password');
    const wrong = await here.post('/account/password', { current: 'nope nope nope', password: NEW_PASSWORD });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('current password is not right');
    const ok = await here.post('/account/password', { current: carol.password, password: NEW_PASSWORD });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/account/password?done=password_changed');
    expect((await here.get('/')).status).toBe(200);
    expect((await elsewhere.get('/')).status).toBe(303);
  });

  it('an admin’s reset link is shown once, stored hashed, works once, expires and is audited (tRPC and portal)', async () => {
    const admin = await makeUser(app.services, { admin: true });
    const dave = await makeUser(app.services);
    const daveSession = await signIn(app, dave.email, dave.password);
    const mbAdmin = await clientFor(app, admin);
    await expectTrpcError((await clientFor(app, dave)).admin.users.resetLink.mutate({ userId: admin.user.id }), 'FORBIDDEN');

    const { url, expiresAt } = await mbAdmin.admin.users.resetLink.mutate({ userId: dave.user.id });
    expect(new Date(expiresAt).getTime() - clock.now().getTime()).toBe(24 * 3600_000);
    const token = url.split('/reset/')[1]!;
    expect(token).toMatch(/^[0-9A-Za-z]{32}$/);
    const stored = await app.t.db('password_resets').where({ user_id: dave.user.id });
    expect(stored).toHaveLength(1);
    expect(stored[0].id).not.toBe(token);
    expect(JSON.stringify(await app.t.db('audit_events').where({ target_id: dave.user.id }))).not.toContain(token);

    const page = await portalClient(app).get(`/reset/${token}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(dave.email);
    const short = await portalClient(app).post(`/reset/${token}`, { password: 'short' });
    expect(short.status).toBe(400);
    const done = await portalClient(app).post(`/reset/${token}`, { password: NEW_PASSWORD });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/login?done=password_reset');
    expect(await canSignIn(dave.email, NEW_PASSWORD)).toBe(true);
    expect((await daveSession.get('/')).status).toBe(303);
    // Single use.
    expect((await portalClient(app).get(`/reset/${token}`)).status).toBe(404);
    expect((await portalClient(app).post(`/reset/${token}`, { password: 'yet another passphrase' })).status).toBe(400);
    expect(await canSignIn(dave.email, 'yet another passphrase')).toBe(false);
    const actions = (await app.t.db('audit_events').where({ target_id: dave.user.id }).orderBy('id')).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['user.password_reset_issue', 'user.password_reset']));

    // The portal's button shows a link once; a newer link voids the older one; links expire after 24 hours.
    const adminPortal = await signIn(app, admin.email, admin.password);
    const first = await adminPortal.post(`/admin/users/${dave.user.id}/reset-link`);
    expect(first.status).toBe(201);
    expect(first.headers['cache-control']).toBe('no-store');
    const firstToken = /\/reset\/([0-9A-Za-z]{32})/.exec(first.text)![1]!;
    const second = (await mbAdmin.admin.users.resetLink.mutate({ userId: dave.user.id })).url.split('/reset/')[1]!;
    expect((await portalClient(app).get(`/reset/${firstToken}`)).status).toBe(404);
    expect((await portalClient(app).get(`/reset/${second}`)).status).toBe(200);
    clock.advance(24 * 3600_000 + 1);
    expect((await portalClient(app).get(`/reset/${second}`)).status).toBe(404);
    expect((await portalClient(app).post(`/reset/${second}`, { password: 'expired link passphrase' })).status).toBe(400);
    expect((await portalClient(app).get('/reset/not-a-token')).status).toBe(404);
  });
});
