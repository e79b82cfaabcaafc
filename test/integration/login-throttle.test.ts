import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldEmail, LoginThrottle } from '../../src/domain/accounts/login-throttle.js';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';
import { makeUser, type TestUser } from '../support/factories.js';
import { portalClient } from '../support/portal.js';

/** Sign-in throttling (#14, points 4–6): by resolved account, per account + source, with a ceiling, in the database. */
describe(`login throttle rules (${dialect})`, () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t.destroy());

  const rule = (max: number, windowMs = 60_000) => ({ max, windowMs });

  it('slides its window: a full bucket opens when its oldest counted failure leaves the window', async () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle({ db: t.db, clock, policy: { perAccountAndSource: rule(3), perAccount: rule(100), perSource: rule(100) } });
    const subject = await throttle.subject('slide@example.test', '10.0.0.1');
    for (let i = 0; i < 3; i++) {
      expect(await throttle.retryAfterSeconds(subject)).toBe(0);
      await throttle.recordFailure(subject);
      clock.advance(10_000);
    }
    expect(await throttle.retryAfterSeconds(subject)).toBe(30);
    clock.advance(30_000);
    expect(await throttle.retryAfterSeconds(subject)).toBe(0);
  });

  it('counts one source across accounts, and a success clears only that account + source', async () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle({ db: t.db, clock, policy: { perAccountAndSource: rule(2), perAccount: rule(100), perSource: rule(3) } });
    const me = await throttle.subject('me@example.test', '10.0.0.3');
    await throttle.recordFailure(me);
    await throttle.recordFailure(me);
    expect(await throttle.retryAfterSeconds(me)).toBeGreaterThan(0);
    await throttle.recordSuccess(me);
    expect(await throttle.retryAfterSeconds(me)).toBe(0);
    await throttle.recordFailure(await throttle.subject('x@example.test', '10.0.0.3'));
    expect(await throttle.retryAfterSeconds(await throttle.subject('y@example.test', '10.0.0.3'))).toBeGreaterThan(0);
    expect(await throttle.retryAfterSeconds(await throttle.subject('y@example.test', '10.0.0.4'))).toBe(0);
  });

  it('folds e-mails with NFKC and case folding', () => {
    expect(foldEmail(' ＶＩＣＴＩＭ@Example.TEST ')).toBe('victim@example.test');
    expect(foldEmail('STRASSE@example.test')).toBe(foldEmail('straße@example.test'));
  });
});

describe(`login throttle over HTTP (${dialect})`, () => {
  let app: TestApp;
  let second: TestApp;
  let victim: TestUser;

  beforeAll(async () => {
    app = await startTestApp();
    // A second instance on the same database (its own process memory, like another machine behind the balancer).
    second = await startTestApp({ testDb: app.t });
  });
  afterAll(async () => {
    await second.close();
    await app.close();
  });

  const login = (on: TestApp, email: string, password: string, source: string) =>
    portalClient(on).post('/login', { email, password }, { 'X-Forwarded-For': source });
  const fail = async (on: TestApp, email: string, source: string) => expect((await login(on, email, 'wrong password!', source)).status).toBe(401);

  it('throttles every spelling of a locked account: fullwidth, case and (on MySQL) accented variants (4)', async () => {
    victim = await makeUser(app.services, { email: 'victim@example.test' });
    for (let i = 0; i < 5; i++) await fail(app, victim.email, '198.51.100.7');
    const variants = ['VICTIM@example.test', 'ｖｉｃｔｉｍ@example.test', ...(onMysql ? ['victïm@example.test', 'víctim@example.test'] : [])];
    for (const email of variants) {
      const res = await login(app, email, 'wrong password!', '198.51.100.7');
      expect(res.status, email).toBe(429);
    }
    for (const email of [victim.email, ...variants]) expect((await login(app, email, victim.password, '198.51.100.7')).status, email).toBe(429);
  });

  it('does not let a stranger lock the owner out: failures from one source do not stop another (5)', async () => {
    const owner = await makeUser(app.services);
    for (let i = 0; i < 5; i++) await fail(app, owner.email, '203.0.113.66');
    expect((await login(app, owner.email, owner.password, '203.0.113.66')).status).toBe(429);
    expect((await login(app, owner.email, owner.password, '192.0.2.10')).status).toBe(303);
  });

  it('has a slower per-account ceiling against guessing from many sources (5)', async () => {
    const target = await makeUser(app.services);
    // 8 sources × 5 = 40 failures in the hour: the ceiling.
    for (let s = 0; s < 8; s++) for (let i = 0; i < 5; i++) await fail(app, target.email, `100.70.0.${s}`);
    const res = await login(app, target.email, target.password, '192.0.2.99');
    expect(res.status).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(15 * 60);
  });

  it('counts attempts on every instance together (6)', async () => {
    const user = await makeUser(app.services);
    for (let i = 0; i < 5; i++) await fail(i % 2 ? second : app, user.email, '198.51.100.20');
    expect((await login(app, user.email, user.password, '198.51.100.20')).status).toBe(429);
    expect((await login(second, user.email, user.password, '198.51.100.20')).status).toBe(429);
    const rows = await app.t.db('login_failures').select('bucket');
    // Buckets are hashes: no e-mail or address is stored in clear.
    expect(rows.every((r: { bucket: string }) => /^[0-9a-f]{64}$/.test(r.bucket))).toBe(true);
  });
});
