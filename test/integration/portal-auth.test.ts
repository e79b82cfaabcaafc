import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeUser, type TestUser } from '../support/factories.js';
import { htmx, portalClient, sessionCookieOf, signIn } from '../support/portal.js';
import { createPortalRouter } from '../../src/portal/router.js';

describe('portal sign-in', () => {
  let app: TestApp;
  let alice: TestUser;

  beforeAll(async () => {
    app = await startTestApp();
    alice = await makeUser(app.services);
  });
  afterAll(() => app.close());

  it('sends anonymous visitors to the sign-in page, remembering where they were going', async () => {
    const res = await portalClient(app).get('/keys');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Fkeys');
    const page = await portalClient(app).get('/login?next=%2Fkeys');
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="next" value="/keys"');
  });

  it('tells htmx to do a full-page redirect when the session is gone', async () => {
    const res = await portalClient(app).get('/keys', htmx);
    expect(res.status).toBe(204);
    expect(res.headers['hx-redirect']).toBe('/login?next=%2Fkeys');
  });

  it('signs in with a new HttpOnly SameSite=Lax session cookie and follows only local next paths', async () => {
    const res = await portalClient(app).post('/login', { email: alice.email.toUpperCase(), password: alice.password, next: '/keys' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/keys');
    const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('mb_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil.example']) {
      const r = await portalClient(app).post('/login', { email: alice.email, password: alice.password, next });
      expect(r.headers.location).toBe('/');
    }
  });

  it('rotates the session at sign-in: the session the browser came with stops working', async () => {
    const first = await signIn(app, alice.email, alice.password);
    expect((await first.get('/keys')).status).toBe(200);
    const again = await portalClient(app, first.cookie).post('/login', { email: alice.email, password: alice.password });
    const second = sessionCookieOf(again);
    expect(second).not.toBe(first.cookie);
    expect((await first.get('/keys')).status).toBe(303);
    expect((await portalClient(app, second).get('/keys')).status).toBe(200);
  });

  it('answers unknown e-mail addresses exactly like wrong passwords', async () => {
    const wrong = await portalClient(app).post('/login', { email: alice.email, password: 'not the password at all' });
    const unknown = await portalClient(app).post('/login', { email: 'nobody@example.test', password: 'not the password at all' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const message = (t: string) => /<div class="alert alert-error"[^>]*>([^<]*)</.exec(t)?.[1];
    expect(message(wrong.text)).toBe('That e-mail and password do not match an account.');
    expect(message(unknown.text)).toBe(message(wrong.text));
    expect(wrong.headers['set-cookie']).toBeUndefined();
  });

  it('signs out: the session ends on the server, not just in the browser', async () => {
    const client = await signIn(app, alice.email, alice.password);
    const out = await client.post('/logout');
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/login?done=signed_out');
    expect((await client.get('/')).status).toBe(303);
  });

  it('ends the sessions of a user who is disabled', async () => {
    const bob = await makeUser(app.services);
    const client = await signIn(app, bob.email, bob.password);
    await app.services.users.setDisabled(bob.user.id, true, { userId: 'admin', role: 'admin', via: 'cli' });
    expect((await client.get('/')).status).toBe(303);
    expect((await portalClient(app).post('/login', { email: bob.email, password: bob.password })).status).toBe(401);
  });

  it('hides sign-up while it is switched off (the default)', async () => {
    expect((await portalClient(app).get('/signup')).status).toBe(404);
    expect((await portalClient(app).post('/signup', { email: 'x@example.test', password: 'long enough password' })).status).toBe(404);
    expect((await portalClient(app).get('/login')).text).not.toContain('href="/signup"');
  });

  it('offers /setup only while no user exists', async () => {
    expect((await portalClient(app).get('/setup')).headers.location).toBe('/login');
    const res = await portalClient(app).post('/setup', { email: 'late@example.test', password: 'a long enough password' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login');
    expect(await app.services.users.findByEmail('late@example.test')).toBeNull();
  });
});

describe('login throttling', () => {
  let app: TestApp;
  let carol: TestUser;

  beforeAll(async () => {
    app = await startTestApp();
    carol = await makeUser(app.services);
  });
  afterAll(() => app.close());

  it('refuses an account after 5 failures, even with the right password, and says when to retry', async () => {
    for (let i = 0; i < 5; i++) expect((await portalClient(app).post('/login', { email: carol.email, password: `wrong guess ${i}` })).status).toBe(401);
    const blocked = await portalClient(app).post('/login', { email: carol.email, password: carol.password });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.text).toContain('Too many sign-in attempts');
    expect(blocked.headers['set-cookie']).toBeUndefined();
  });

  it('throttles the same way for an e-mail that has no account', async () => {
    for (let i = 0; i < 5; i++) await portalClient(app).post('/login', { email: 'ghost@example.test', password: `guess ${i}` });
    expect((await portalClient(app).post('/login', { email: 'ghost@example.test', password: 'guess' })).status).toBe(429);
  });

  it('refuses one IP after 20 failures across many accounts', async () => {
    // Two accounts are already used up above (10 failures from this IP); spread the rest over fresh e-mails.
    for (let i = 0; i < 10; i++) await portalClient(app).post('/login', { email: `spray${i}@example.test`, password: 'guess' });
    const dave = await makeUser(app.services);
    const res = await portalClient(app).post('/login', { email: dave.email, password: dave.password });
    expect(res.status).toBe(429);
  });
});

describe('sign-up when enabled, and first-run set-up', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ env: { MODELBRIDGE_SIGNUP: '1' } });
  });
  afterAll(() => app.close());

  it('sends the very first visitor to /setup, which creates the installation admin and signs them in', async () => {
    expect((await portalClient(app).get('/login')).headers.location).toBe('/setup');
    const short = await portalClient(app).post('/setup', { email: 'root@example.test', password: 'short' });
    expect(short.status).toBe(400);
    expect(short.text).toContain('Passwords are 10 to 200 characters long.');
    expect(short.text).toContain('value="root@example.test"');
    const res = await portalClient(app).post('/setup', { email: 'root@example.test', name: 'Root', password: 'a long enough password' });
    expect(res.status).toBe(303);
    const admin = await app.services.users.findByEmail('root@example.test');
    expect(admin?.role).toBe('admin');
    expect((await portalClient(app, sessionCookieOf(res)).get('/admin/users')).status).toBe(200);
    expect((await portalClient(app).get('/setup')).headers.location).toBe('/login');
  });

  it('lets anyone sign up as a plain user on the default plan', async () => {
    expect((await portalClient(app).get('/login')).text).toContain('href="/signup"');
    const dup = await portalClient(app).post('/signup', { email: 'root@example.test', password: 'a long enough password' });
    expect(dup.status).toBe(409);
    expect(dup.text).toContain('already exists');
    const res = await portalClient(app).post('/signup', { email: 'new@example.test', name: 'New', password: 'a long enough password', role: 'admin' });
    expect(res.status).toBe(303);
    const user = await app.services.users.findByEmail('new@example.test');
    expect(user?.role).toBe('user');
    const plans = await app.services.plans.list();
    expect(plans.find((p) => p.id === user!.planId)?.isDefault).toBe(true);
    expect((await portalClient(app, sessionCookieOf(res)).get('/')).status).toBe(200);
  });
});

describe('request forgery and headers', () => {
  let app: TestApp;
  let erin: TestUser;

  beforeAll(async () => {
    app = await startTestApp();
    erin = await makeUser(app.services);
  });
  afterAll(() => app.close());

  it('refuses a state change from another origin, or with no Origin or Referer at all', async () => {
    const client = await signIn(app, erin.email, erin.password);
    const crossOrigin = await request(app.url).post('/keys').type('form').set('Cookie', client.cookie!).set('Origin', 'https://evil.example').send({ name: 'x' });
    expect(crossOrigin.status).toBe(403);
    const crossReferer = await request(app.url).post('/keys').type('form').set('Cookie', client.cookie!).set('Referer', 'https://evil.example/page').send({ name: 'x' });
    expect(crossReferer.status).toBe(403);
    const neither = await request(app.url).post('/keys').type('form').set('Cookie', client.cookie!).send({ name: 'x' });
    expect(neither.status).toBe(403);
    const logout = await request(app.url).post('/logout').set('Cookie', client.cookie!).set('Origin', 'null');
    expect(logout.status).toBe(403);
    expect(await app.services.keys.list({}, erin.actor)).toHaveLength(0);
    // A same-origin Referer (browsers that omit Origin) is accepted.
    const sameReferer = await request(app.url).post('/keys').type('form').set('Cookie', client.cookie!).set('Referer', `${app.url}/keys`).send({ name: 'ok' });
    expect(sameReferer.status).toBe(201);
  });

  it('refuses a cross-origin sign-in (login CSRF)', async () => {
    const res = await request(app.url).post('/login').type('form').set('Origin', 'https://evil.example').send({ email: erin.email, password: erin.password });
    expect(res.status).toBe(403);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('sends a strict CSP (no inline script or style) that allows the local htmx file', async () => {
    const res = await portalClient(app).get('/login');
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('same-origin');
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.text).not.toMatch(/\sstyle="/);
    expect(res.text).toContain('"includeIndicatorStyles":false');
    const htmxFile = await request(app.url).get('/assets/htmx.min.js');
    expect(htmxFile.status).toBe(200);
    expect(htmxFile.headers['content-type']).toMatch(/javascript/);
    expect((await request(app.url).get('/assets/app.css')).status).toBe(200);
    expect((await request(app.url).get('/assets/../package.json')).status).not.toBe(200);
  });

  it('keeps every portal page behind sign-in', async () => {
    const pages = ['/', '/keys', '/keys/abc', '/keys/abc/limit', '/keys/abc/revoke', '/keys/abc/rotate', '/teams', '/teams/abc', '/usage', '/usage.csv', '/tokens', '/admin', '/admin/users', '/admin/balances', '/admin/plans', '/admin/models', '/admin/audit', '/admin/jobs', '/no-such-page'];
    for (const path of pages) {
      const res = await portalClient(app).get(path);
      expect(res.status, path).toBe(303);
      expect(res.headers.location, path).toMatch(/^\/login/);
    }
    const posts = ['/keys', '/keys/abc/limit', '/keys/abc/revoke', '/keys/abc/rotate', '/teams', '/teams/abc/members', '/tokens', '/admin/users', '/admin/credit', '/admin/models'];
    for (const path of posts) {
      const res = await portalClient(app).post(path, { name: 'x' });
      expect(res.status, path).toBe(303);
      expect(res.headers.location, path).toMatch(/^\/login/);
    }
  });

  it('needs a session for every route in the portal router except the sign-in pages (walking the router itself)', async () => {
    const routes = portalRoutes(createPortalRouter(app.deps));
    expect(routes.length).toBeGreaterThan(40);
    expect(routes).toEqual(expect.arrayContaining(['GET /admin/jobs', 'POST /admin/credit', 'POST /keys/:id/revoke', 'GET /usage.csv']));
    const open = new Set(['GET /login', 'POST /login', 'GET /signup', 'POST /signup', 'GET /setup', 'POST /setup', 'POST /logout', 'GET /assets/htmx.min.js',
      // An administrator's one-time password reset link (its secret is the credential; see account-passwords.test.ts).
      'GET /reset/:token', 'POST /reset/:token',
      // A team invitation link, and the account its invitee may create from it (see team-invites.test.ts).
      'GET /invite/:token', 'POST /invite/:token/account']);
    expect(routes.filter((r) => open.has(r))).toHaveLength(open.size);
    for (const route of routes.filter((r) => !open.has(r))) {
      const [method, path] = route.split(' ') as [string, string];
      const url = path.replace(/:[A-Za-z]+/g, 'x');
      const res = method === 'GET' ? await portalClient(app).get(url) : await portalClient(app).post(url, {});
      expect(res.status, route).toBe(303);
      expect(res.headers.location, route).toMatch(/^\/login/);
    }
  });

  it('answers malformed and oversized forms with 4xx pages, never 5xx', async () => {
    const client = await signIn(app, erin.email, erin.password);
    const huge = await client.post('/keys', { name: 'x'.repeat(40_000) });
    expect(huge.status).toBe(413);
    const odd = await request(app.url).post('/keys').set('Origin', app.url).set('Cookie', client.cookie!).type('form').send('name=a&name=b&limit=%E0%A4%A');
    expect(odd.status).toBe(400);
    expect(odd.text).toContain('The spending limit must be an amount in AUD');
    const unknown = await client.get('/no-such-page');
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('Not found');
  });
});

/** "METHOD /path" for every route of an Express router, descending into mounted routers. */
function portalRoutes(router: unknown, prefix = ''): string[] {
  type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] }; rawPath?: string };
  const out: string[] = [];
  for (const layer of (router as { stack: Layer[] }).stack) {
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods)) out.push(`${method.toUpperCase()} ${prefix}${layer.route.path}`);
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...portalRoutes(layer.handle, prefix + mount));
    }
  }
  return [...new Set(out)];
}
