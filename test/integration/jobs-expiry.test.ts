import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/auth/secret-format.js';
import { MeteringRefusal } from '../../src/domain/billing/refusal.js';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp } from '../support/app.js';
import { dialect, type TestDb } from '../support/db.js';
import { startFakeUpstream } from '../support/fake-upstream.js';
import { makeKey, makeUser } from '../support/factories.js';
import { countRows, jobFixture, jobInstance, metricValue, type JobInstance } from '../support/jobs.js';

describe(`expire-keys job (${dialect})`, () => {
  let t: TestDb;
  let clock: ManualClock;
  let a: JobInstance;
  beforeAll(async () => ({ t, clock, a } = await jobFixture()));
  afterAll(async () => t.destroy());

  it('refuses a key at its expiry instant, then stores `expired` with one audit event, once', async () => {
    const owner = await makeUser(a.services, { prepaidMicro: 10_000_000 });
    const expiresAt = new Date('2026-11-26T01:00:00.000Z');
    const { key, secret } = await makeKey(a.services, owner, { expiresAt });

    clock.set(new Date(expiresAt.getTime() - 1));
    await expect(a.services.metering.authenticate(hashSecret(secret))).resolves.toMatchObject({ id: key.id, status: 'active' });
    expect((await a.run('expire-keys')).summary).toBe('0 expired, 0 retired after rotation');

    clock.set(expiresAt);
    // Every read judges expiry against the clock: refused now, before the job has run.
    const refusal = await a.services.metering.authenticate(hashSecret(secret)).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(MeteringRefusal);
    expect((refusal as MeteringRefusal).reason).toBe('key_expired');
    expect((await a.services.keys.get(key.id, owner.actor)).status).toBe('expired');
    expect((await t.db('api_keys').where({ id: key.id }).first()).status).toBe('active');

    const first = await a.run('expire-keys');
    expect(first).toMatchObject({ result: 'ok', summary: '1 expired, 0 retired after rotation' });
    const stored = await t.db('api_keys').where({ id: key.id }).first();
    expect(stored.status).toBe('expired');
    const audits = await t.db('audit_events').where({ action: 'key.expire', target_id: key.id });
    expect(audits).toHaveLength(1);
    expect(audits[0].actor_kind).toBe('system');

    clock.advance(60_000);
    const second = await a.run('expire-keys');
    expect(second).toMatchObject({ result: 'ok', summary: '0 expired, 0 retired after rotation' });
    expect(await countRows(t.db, 'audit_events', { action: 'key.expire', target_id: key.id })).toBe(1);
    expect(await t.db('api_keys').where({ id: key.id }).first()).toEqual(stored);
  });

  it('also expires a key that had reached its limit, and leaves revoked and unexpired keys alone', async () => {
    const owner = await makeUser(a.services);
    const expiresAt = new Date(clock.now().getTime() + 3_600_000);
    const limited = await makeKey(a.services, owner, { expiresAt, spendLimitMicro: 0 });
    const revoked = await makeKey(a.services, owner, { expiresAt });
    await a.services.keys.revoke(revoked.key.id, owner.actor);
    const later = await makeKey(a.services, owner, { expiresAt: new Date(expiresAt.getTime() + 3_600_000) });
    expect((await t.db('api_keys').where({ id: limited.key.id }).first()).status).toBe('limit_reached');

    clock.set(expiresAt);
    expect((await a.run('expire-keys')).summary).toBe('1 expired, 0 retired after rotation');
    expect((await t.db('api_keys').where({ id: limited.key.id }).first()).status).toBe('expired');
    expect((await t.db('api_keys').where({ id: revoked.key.id }).first()).status).toBe('revoked');
    expect((await t.db('api_keys').where({ id: later.key.id }).first()).status).toBe('active');
  });

  it('retires a rotated key when its grace period ends, once', async () => {
    const owner = await makeUser(a.services);
    const { key } = await makeKey(a.services, owner);
    await a.services.keys.rotate(key.id, 300, owner.actor);

    clock.advance(299_999);
    expect((await a.run('expire-keys')).summary).toMatch(/, 0 retired after rotation$/);
    clock.advance(1);
    expect((await a.services.keys.get(key.id, owner.actor)).status).toBe('revoked');
    expect((await a.run('expire-keys')).summary).toBe('0 expired, 1 retired after rotation');
    const stored = await t.db('api_keys').where({ id: key.id }).first();
    expect(stored.status).toBe('revoked');
    expect(stored.revoked_at).not.toBeNull();
    expect((await a.run('expire-keys')).summary).toBe('0 expired, 0 retired after rotation');
    expect(await countRows(t.db, 'audit_events', { action: 'key.retire', target_id: key.id })).toBe(1);
  });

  it('records each run in job_locks and counts it', async () => {
    const row = await t.db('job_locks').where({ name: 'expire-keys' }).first();
    expect(row.owner).toBeNull();
    expect(row.locked_until).toBeNull();
    expect(row.last_result).toMatch(/^ok: /);
    expect(await metricValue(a.metrics, 'modelbridge_job_runs_total', { job: 'expire-keys', result: 'ok' })).toBeGreaterThanOrEqual(6);
  });

  it('end to end: the proxy refuses the key at its expiry instant, then the scheduled job records it', async () => {
    const fake = await startFakeUpstream();
    const appClock = new ManualClock(clock.now());
    const app = await startTestApp({ clock: appClock, env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-test' } });
    try {
      const owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
      const expiresAt = new Date(appClock.now().getTime() + 600_000);
      const { key, secret } = await makeKey(app.services, owner, { expiresAt });
      const client = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
      const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 8 };

      appClock.set(new Date(expiresAt.getTime() - 1));
      await expect(client.chat.completions.create(chat)).resolves.toBeTruthy();
      appClock.set(expiresAt);
      await expect(client.chat.completions.create(chat)).rejects.toMatchObject({ status: 401, code: 'key_expired' });
      expect(fake.requests).toHaveLength(1);

      const jobs = jobInstance(app.t.db, appClock);
      expect((await jobs.run('expire-keys')).summary).toBe('1 expired, 0 retired after rotation');
      expect((await jobs.run('expire-keys')).summary).toBe('0 expired, 0 retired after rotation');
      expect((await app.t.db('api_keys').where({ id: key.id }).first()).status).toBe('expired');
      expect(await countRows(app.t.db, 'audit_events', { action: 'key.expire', target_id: key.id })).toBe(1);
      await expect(client.chat.completions.create(chat)).rejects.toMatchObject({ status: 401, code: 'key_expired' });
    } finally {
      await app.close();
      await fake.close();
    }
  });
});
