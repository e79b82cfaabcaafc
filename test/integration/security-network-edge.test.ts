import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeUser } from '../support/factories.js';
import { portalClient, sessionCookieOf } from '../support/portal.js';

/** The network edge (#14, points 7–8): same-origin under DNS rebinding, TRUST_PROXY, /metrics opt-in. */
const SETUP = { email: 'root@example.test', name: 'Root', password: 'a long enough password' };
const portOf = (app: TestApp) => new URL(app.url).port;

describe(`same-origin checks without PUBLIC_URL trust only loopback host names (${dialect})`, () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.close());

  /** A page on the attacker's name that resolves to 127.0.0.1: the browser sends that name as Host and Origin. */
  const rebound = (host: string) => ({ Host: `${host}:${portOf(app)}`, Origin: `http://${host}:${portOf(app)}` });

  it('refuses POST /setup from a rebound name, so no stranger creates the first admin (7)', async () => {
    for (const host of ['evil.example', 'attacker.localhost.evil.example', '127.0.0.1.nip.io', 'localhost.evil.example']) {
      const res = await request(app.url).post('/setup').type('form').set(rebound(host)).send(SETUP);
      expect(res.status, host).toBe(403);
    }
    expect(await app.services.users.count()).toBe(0);
  });

  it('accepts localhost, 127.0.0.1 and [::1] with their own Origin', async () => {
    const res = await request(app.url).post('/setup').type('form').set(rebound('localhost')).send(SETUP);
    expect(res.status).toBe(303);
    expect(await app.services.users.count()).toBe(1);
    for (const host of ['127.0.0.1', '[::1]']) {
      const login = await request(app.url).post('/login').type('form').set(rebound(host)).send({ email: SETUP.email, password: SETUP.password });
      expect(login.status, host).toBe(303);
    }
  });

  it('refuses sign-in and a cookie-authenticated tokens.create from a rebound name (7)', async () => {
    const login = await request(app.url).post('/login').type('form').set(rebound('evil.example')).send({ email: SETUP.email, password: SETUP.password });
    expect(login.status).toBe(403);
    const signedIn = await portalClient(app).post('/login', { email: SETUP.email, password: SETUP.password });
    const cookie = sessionCookieOf(signedIn);
    const mint = await request(app.url).post('/trpc/tokens.create').set(rebound('evil.example')).set('Cookie', cookie).send({ name: 'stolen' });
    expect(mint.status).toBe(403);
    const own = await request(app.url).post('/trpc/tokens.create').set('Origin', app.url).set('Cookie', cookie).send({ name: 'mine' });
    expect(own.status).toBe(200);
  });
});

describe(`same-origin checks with PUBLIC_URL trust its origin and the allow-list only (${dialect})`, () => {
  let app: TestApp;
  const PUBLIC = 'https://portal.example.com';
  const EXTRA = 'https://admin.example.com';
  beforeAll(async () => {
    app = await startTestApp({ env: { PUBLIC_URL: PUBLIC, MODELBRIDGE_ALLOWED_ORIGINS: EXTRA } });
    await makeUser(app.services);
  });
  afterAll(() => app.close());

  it('refuses an Origin matching the Host when it is not PUBLIC_URL, even a loopback one', async () => {
    for (const host of ['evil.example', 'localhost', '127.0.0.1']) {
      const res = await request(app.url).post('/login').type('form').set({ Host: host, Origin: `http://${host}` }).send({ email: 'x@example.test', password: 'x' });
      expect(res.status, host).toBe(403);
    }
  });

  it('accepts PUBLIC_URL’s origin and the documented MODELBRIDGE_ALLOWED_ORIGINS', async () => {
    for (const origin of [PUBLIC, EXTRA]) {
      const res = await request(app.url).post('/login').type('form').set('Origin', origin).send({ email: 'nobody@example.test', password: 'wrong password' });
      expect(res.status, origin).toBe(401);
    }
  });
});

describe('TRUST_PROXY and the other edge settings are validated at start (8)', () => {
  it('refuses bad values with a message naming the variable', () => {
    const bad: Array<Record<string, string>> = [
      { TRUST_PROXY: 'true' }, { TRUST_PROXY: 'everyone' }, { TRUST_PROXY: '10.0.0.0/33' }, { TRUST_PROXY: '99' },
      { METRICS_ALLOW: 'prometheus.internal' }, { METRICS_TOKEN: 'short' },
      { MODELBRIDGE_ALLOWED_ORIGINS: 'https://a.example' },
      { PUBLIC_URL: 'https://p.example', MODELBRIDGE_ALLOWED_ORIGINS: 'https://a.example/path' },
    ];
    for (const env of bad) {
      expect(() => parseConfig(env), JSON.stringify(env)).toThrow(ConfigError);
      expect(() => parseConfig(env)).toThrow(Object.keys(env).at(-1)!);
    }
  });

  it('accepts none, hop counts, addresses, subnets and Express’s names', () => {
    expect(parseConfig({}).trustProxy).toEqual(['loopback']);
    expect(parseConfig({ TRUST_PROXY: 'none' }).trustProxy).toBe(false);
    expect(parseConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(parseConfig({ TRUST_PROXY: '10.0.0.5, 10.1.0.0/16 ,fd00::/8,uniquelocal' }).trustProxy).toEqual(['10.0.0.5', '10.1.0.0/16', 'fd00::/8', 'uniquelocal']);
  });
});

describe(`who is the client, and who may scrape /metrics (${dialect})`, () => {
  const apps: TestApp[] = [];
  const start = async (env: Record<string, string>) => {
    const app = await startTestApp({ env });
    apps.push(app);
    return app;
  };
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it('/metrics is opt-in: with nothing configured, not even this machine or a private network may scrape (8)', async () => {
    const app = await start({});
    expect((await request(app.url).get('/metrics')).status).toBe(401);
    expect((await request(app.url).get('/metrics').set('X-Forwarded-For', '10.1.2.3')).status).toBe(401);
  });

  it('lets in METRICS_ALLOW addresses and the METRICS_TOKEN bearer, and believes X-Forwarded-For only from TRUST_PROXY', async () => {
    const token = 'prometheus-scrape-token-0123456789abcdef';
    const trusting = await start({ METRICS_ALLOW: '10.1.0.0/16', METRICS_TOKEN: token, TRUST_PROXY: '127.0.0.1' });
    expect((await request(trusting.url).get('/metrics').set('X-Forwarded-For', '10.1.2.3')).status).toBe(200);
    expect((await request(trusting.url).get('/metrics').set('X-Forwarded-For', '10.2.0.1')).status).toBe(401);
    expect((await request(trusting.url).get('/metrics').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    expect((await request(trusting.url).get('/metrics').set('Authorization', `Bearer ${token}x`)).status).toBe(403);

    // No proxy trusted: the peer (127.0.0.1) is the client, whatever X-Forwarded-For claims.
    const direct = await start({ METRICS_ALLOW: '10.1.0.0/16', TRUST_PROXY: 'none' });
    expect((await request(direct.url).get('/metrics').set('X-Forwarded-For', '10.1.2.3')).status).toBe(401);
  });

  it('behind a trusted proxy, each user has their own sign-in counter (8)', async () => {
    const app = await start({ TRUST_PROXY: 'loopback' });
    const user = await makeUser(app.services);
    const login = (source: string, password: string) =>
      portalClient(app).post('/login', { email: user.email, password }, { 'X-Forwarded-For': source });
    for (let i = 0; i < 5; i++) expect((await login('198.51.100.1', 'wrong password!')).status).toBe(401);
    expect((await login('198.51.100.2', user.password)).status).toBe(303);
  });
});
