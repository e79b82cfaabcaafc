import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionManager, SESSION_COOKIE, type SessionManager } from '../../src/auth/sessions.js';
import { hashSecret } from '../../src/auth/secret-format.js';
import { systemClock } from '../../src/domain/clock.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeUser, type TestUser } from '../support/factories.js';

describe(`browser sessions (${dialect})`, () => {
  let t: TestDb;
  let sessions: SessionManager;
  let services: Services;
  let alice: TestUser;

  beforeAll(async () => {
    t = await createTestDb();
    sessions = createSessionManager(t.db, { secure: false });
    services = createServices({ db: t.db, clock: systemClock, timeZone: 'Australia/Sydney', onUserDisabled: (id) => sessions.invalidateUser(id) });
    alice = await makeUser(services);
  });
  afterAll(async () => t.destroy());

  it('starts every login with a new random session id, never reusing one', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await sessions.create(alice.user.id, { ip: '127.0.0.1', userAgent: 'vitest' })).value);
    expect(ids.size).toBe(5);
    for (const id of ids) {
      expect(id.length).toBeGreaterThanOrEqual(20);
      expect((await sessions.validate(id))?.userId).toBe(alice.user.id);
    }
  });

  it('never adopts a session id the client made up (no session fixation)', async () => {
    expect(await sessions.validate('attacker-chosen-session-id')).toBeNull();
    expect(await sessions.validate('')).toBeNull();
  });

  it('sets an HttpOnly, SameSite=Lax cookie for the whole site, Secure behind HTTPS', async () => {
    const cookie = (await sessions.create(alice.user.id, {})).serialize();
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Secure/i);
    const secure = createSessionManager(t.db, { secure: true });
    expect((await secure.create(alice.user.id, {})).serialize()).toMatch(/Secure/i);
    expect(sessions.blankCookie().serialize()).toMatch(/Max-Age=0/i);
  });

  it('reads the session id from a Cookie header', async () => {
    const cookie = await sessions.create(alice.user.id, {});
    expect(sessions.readCookie(`theme=dark; ${SESSION_COOKIE}=${cookie.value}; other=1`)).toBe(cookie.value);
    expect(sessions.readCookie(undefined)).toBeNull();
  });

  it('stores only the SHA-256 of the session id', async () => {
    const cookie = await sessions.create(alice.user.id, { ip: '10.0.0.1', userAgent: 'ua' });
    const rows = await t.db('sessions').where({ user_id: alice.user.id });
    expect(rows.map((r) => r.id)).toContain(hashSecret(cookie.value));
    expect(JSON.stringify(rows)).not.toContain(cookie.value);
    const row = rows.find((r) => r.id === hashSecret(cookie.value));
    expect(row).toMatchObject({ ip: '10.0.0.1', user_agent: 'ua' });
  });

  it('ends a session on logout (invalidate), leaving the user’s other sessions', async () => {
    const a = await sessions.create(alice.user.id, {});
    const b = await sessions.create(alice.user.id, {});
    await sessions.invalidate(a.value);
    expect(await sessions.validate(a.value)).toBeNull();
    expect(await sessions.validate(b.value)).not.toBeNull();
    expect(await t.db('sessions').where({ id: hashSecret(a.value) })).toHaveLength(0);
  });

  it('refuses and removes an expired session', async () => {
    const cookie = await sessions.create(alice.user.id, {});
    await t.db('sessions').where({ id: hashSecret(cookie.value) }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await sessions.validate(cookie.value)).toBeNull();
    expect(await t.db('sessions').where({ id: hashSecret(cookie.value) })).toHaveLength(0);
  });

  it('ends every session of a user who is disabled', async () => {
    const bob = await makeUser(services);
    const cookies = [await sessions.create(bob.user.id, {}), await sessions.create(bob.user.id, {})];
    const admin = await makeUser(services, { admin: true });
    await services.users.setDisabled(bob.user.id, true, admin.actor);
    expect(await t.db('sessions').where({ user_id: bob.user.id })).toHaveLength(0);
    for (const c of cookies) expect(await sessions.validate(c.value)).toBeNull();
    // Alice's sessions are untouched.
    expect(await t.db('sessions').where({ user_id: alice.user.id })).not.toHaveLength(0);
  });

  it('refuses the session of a user disabled by any other route (the session row survived)', async () => {
    const carol = await makeUser(services);
    const cookie = await sessions.create(carol.user.id, {});
    await t.db('users').where({ id: carol.user.id }).update({ disabled: true });
    expect(await t.db('sessions').where({ id: hashSecret(cookie.value) })).toHaveLength(1);
    expect(await sessions.validate(cookie.value)).toBeNull();
  });
});
