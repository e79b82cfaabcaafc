import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser, type TestUser } from '../support/factories.js';
import { allProcedures, bearer, rawCall, sessionCookieFor, tokenFor } from '../support/trpc.js';

/** Procedures anyone may call without credentials. Adding one here is a security decision: review it. */
const PUBLIC_PROCEDURES: string[] = [];

describe(`tRPC authentication and authorization (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let alice: TestUser;
  let admin: TestUser;
  let aliceToken: string;
  let procedures: Awaited<ReturnType<typeof allProcedures>>;

  beforeAll(async () => {
    clock = new ManualClock(new Date());
    app = await startTestApp({ clock });
    alice = await makeUser(app.services);
    admin = await makeUser(app.services, { admin: true });
    aliceToken = await tokenFor(app, alice);
    procedures = await allProcedures();
  });
  afterAll(async () => app.close());

  it('finds the whole API when it walks the router', () => {
    const paths = procedures.map((p) => p.path);
    for (const expected of ['me.get', 'keys.rotate', 'teams.removeMember', 'usage.list', 'tokens.revoke', 'models.list', 'admin.credit', 'admin.plans.update'])
      expect(paths).toContain(expected);
    expect(procedures.length).toBeGreaterThanOrEqual(28);
  });

  it('answers 401 on every non-public procedure when no credentials are sent', async () => {
    for (const { path, type } of procedures) {
      if (PUBLIC_PROCEDURES.includes(path)) continue;
      const res = await rawCall(app, type, path, {});
      expect(res.status, path).toBe(401);
      expect(res.body.error.data.code, path).toBe('UNAUTHORIZED');
      expect(res.headers.get('www-authenticate'), path).toMatch(/^Bearer/);
    }
  });

  it('refuses a proxy key (mbk_) on every procedure with 401, pointing to /v1', async () => {
    const { secret } = await makeKey(app.services, alice);
    for (const { path, type } of procedures) {
      const res = await rawCall(app, type, path, {}, bearer(secret));
      expect(res.status, path).toBe(401);
      expect(res.body.error.message).toContain('/v1');
      expect(res.text).not.toContain(secret);
    }
  });

  it('refuses mistyped tokens and other authorization schemes with 401', async () => {
    const broken = `${aliceToken.slice(0, -1)}${aliceToken.endsWith('A') ? 'B' : 'A'}`;
    for (const headers of [bearer(broken), bearer('mbm_nope'), { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }]) {
      const res = await rawCall(app, 'query', 'me.get', undefined, headers);
      expect(res.status).toBe(401);
    }
  });

  it('refuses cookie-authenticated mutations from another origin, or with no origin, on every mutation (403)', async () => {
    const cookie = await sessionCookieFor(app, admin);
    const before = await app.t.db('api_keys').count({ n: '*' }).first();
    for (const { path, type } of procedures.filter((p) => p.type === 'mutation')) {
      for (const origin of [{ origin: 'https://evil.example' }, {}] as Array<Record<string, string>>) {
        const res = await rawCall(app, type, path, { name: 'csrf' }, { cookie, ...origin });
        expect(res.status, path).toBe(403);
        expect(res.body.error.message, path).toMatch(/cross-origin/i);
      }
    }
    const after = await app.t.db('api_keys').count({ n: '*' }).first();
    expect(Number(after!.n)).toBe(Number(before!.n));
  });

  it('accepts same-origin cookie mutations, and cookie queries', async () => {
    const cookie = await sessionCookieFor(app, alice);
    const created = await rawCall(app, 'mutation', 'keys.create', { name: 'from the portal' }, { cookie, origin: app.url });
    expect(created.status).toBe(200);
    expect(created.body.result.data.key.ownerId).toBe(alice.user.id);
    const me = await rawCall(app, 'query', 'me.get', undefined, { cookie });
    expect(me.status).toBe(200);
    expect(me.body.result.data.user.id).toBe(alice.user.id);
  });

  it('accepts token-authenticated mutations without an Origin (a token is not ambient, so CSRF cannot use it)', async () => {
    const res = await rawCall(app, 'mutation', 'keys.create', { name: 'from CI' }, bearer(aliceToken));
    expect(res.status).toBe(200);
    const foreign = await rawCall(app, 'mutation', 'keys.create', { name: 'from CI' }, { ...bearer(aliceToken), origin: 'https://elsewhere.example' });
    expect(foreign.status).toBe(200);
  });

  it('lets a bearer token win over a session cookie', async () => {
    const cookie = await sessionCookieFor(app, admin);
    const res = await rawCall(app, 'query', 'me.get', undefined, { ...bearer(aliceToken), cookie });
    expect(res.body.result.data.user.id).toBe(alice.user.id);
  });

  it('answers 403 on every admin procedure for a user who is not an installation admin', async () => {
    for (const { path, type } of procedures.filter((p) => p.path.startsWith('admin.'))) {
      const res = await rawCall(app, type, path, {}, bearer(aliceToken));
      expect(res.status, path).toBe(403);
    }
  });

  it('refuses a revoked token from the next request on', async () => {
    const token = await tokenFor(app, alice);
    expect((await rawCall(app, 'query', 'me.get', undefined, bearer(token))).status).toBe(200);
    const list = await rawCall(app, 'query', 'tokens.list', undefined, bearer(token));
    const id = list.body.result.data.find((t: { last4: string }) => token.endsWith(t.last4)).id;
    expect((await rawCall(app, 'mutation', 'tokens.revoke', { id }, bearer(token))).status).toBe(200);
    expect((await rawCall(app, 'query', 'me.get', undefined, bearer(token))).status).toBe(401);
  });

  it('refuses a token at its expiry instant', async () => {
    const token = await tokenFor(app, alice, { expiresAt: new Date(clock.now().getTime() + 60_000) });
    expect((await rawCall(app, 'query', 'me.get', undefined, bearer(token))).status).toBe(200);
    clock.advance(60_000);
    expect((await rawCall(app, 'query', 'me.get', undefined, bearer(token))).status).toBe(401);
  });

  it("refuses a disabled user's token and session; re-enabling restores the token but not the ended session", async () => {
    const bob = await makeUser(app.services);
    const bobToken = await tokenFor(app, bob);
    const bobCookie = await sessionCookieFor(app, bob);
    expect((await rawCall(app, 'query', 'me.get', undefined, { cookie: bobCookie })).status).toBe(200);
    const adminToken = await tokenFor(app, admin);
    const disabled = await rawCall(app, 'mutation', 'admin.users.disable', { userId: bob.user.id }, bearer(adminToken));
    expect(disabled.body.result.data.disabled).toBe(true);
    expect((await rawCall(app, 'query', 'me.get', undefined, bearer(bobToken))).status).toBe(401);
    expect((await rawCall(app, 'query', 'me.get', undefined, { cookie: bobCookie })).status).toBe(401);
    expect(await app.t.db('sessions').where({ user_id: bob.user.id })).toHaveLength(0);

    await rawCall(app, 'mutation', 'admin.users.disable', { userId: bob.user.id, disabled: false }, bearer(adminToken));
    expect((await rawCall(app, 'query', 'me.get', undefined, bearer(bobToken))).status).toBe(200);
    expect((await rawCall(app, 'query', 'me.get', undefined, { cookie: bobCookie })).status).toBe(401);
  });
});

describe(`tRPC transport limits and errors (${dialect})`, () => {
  let app: TestApp;
  let token: string;

  beforeAll(async () => {
    app = await startTestApp();
    token = await tokenFor(app, await makeUser(app.services));
  });
  afterAll(async () => app.close());

  it('refuses a body over 64 KiB with 413', async () => {
    const res = await rawCall(app, 'mutation', 'keys.create', { name: 'x'.repeat(100 * 1024) }, bearer(token));
    expect(res.status).toBe(413);
  });

  it('answers malformed JSON, unknown procedures and wrong methods with 4xx', async () => {
    const post = await fetch(`${app.url}/trpc/keys.create`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: '{"name":' });
    expect(post.status).toBe(400);
    const get = await fetch(`${app.url}/trpc/keys.list?input=%7Bnope`, { headers: bearer(token) });
    expect(get.status).toBe(400);
    expect((await rawCall(app, 'query', 'keys.nothing', undefined, bearer(token))).status).toBe(404);
    expect((await rawCall(app, 'query', 'keys.create', { name: 'x' }, bearer(token))).status).toBe(405);
  });

  it('never sends stack traces, and marks every response no-store', async () => {
    const bad = await rawCall(app, 'query', 'keys.get', { id: 'missing' }, bearer(token));
    expect(bad.status).toBe(404);
    expect(bad.text).not.toMatch(/stack|\.ts:\d+/);
    expect(bad.headers.get('cache-control')).toBe('no-store');
    const created = await rawCall(app, 'mutation', 'keys.create', { name: 'cache' }, bearer(token));
    expect(created.headers.get('cache-control')).toBe('no-store');
  });

  it('turns an unexpected failure into a generic 500 and logs it', async () => {
    await app.t.db.schema.dropTable('model_aliases'); // it references models (MySQL refuses to drop a referenced table)
    await app.t.db.schema.dropTable('models');
    const res = await rawCall(app, 'query', 'models.list', undefined, bearer(token));
    expect(res.status).toBe(500);
    expect(res.body.error.message).toBe('Something went wrong on our side; it has been logged.');
    expect(res.text).not.toMatch(/no such table|doesn't exist|sqlite|select |ER_NO_SUCH/i);
    expect(app.logs.some((l) => l.includes('tRPC procedure failed') && l.includes('models.list'))).toBe(true);
  });
});
