import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { CLAIM_MS } from '../../src/domain/webhooks/delivery.service.js';
import type { Db } from '../../src/db/knex.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { spend } from '../support/jobs.js';
import { startReceiver } from '../support/webhook-receiver.js';

const TZ = 'Australia/Sydney';

/**
 * Webhooks end to end on a real database and a real receiver on loopback (docs/webhooks.md): events recorded with
 * their change, signed deliveries retried with backoff, exactly one accepted delivery per event across retries,
 * two senders and a sender that died mid-claim; and deliveries that must not go where they point.
 */
describe(`webhook deliveries (${dialect})`, () => {
  let t: TestDb;
  let clock: ManualClock;
  let a: Services;
  let b: Services;
  let owner: TestUser;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const instance = (db: Db, allowPrivate = true) => createServices({ db, clock, timeZone: TZ, webhooks: { allowPrivate, random: () => 0 } });

  beforeAll(async () => {
    t = await createTestDb();
    clock = new ManualClock('2026-12-02T00:00:00.000Z');
    a = instance(t.db);
    b = instance(t.another());
    receiver = await startReceiver();
    owner = await makeUser(a, { prepaidMicro: 100_000_000 });
  });
  afterAll(async () => {
    await receiver?.close();
    await t?.destroy();
  });
  beforeEach(async () => {
    receiver.received.length = 0;
    receiver.state.failFirst = 0;
    receiver.state.respond = null;
    // Each test starts with no endpoints and an empty outbox.
    await t.db('webhook_endpoints').update({ deleted_at: clock.now() }).whereNull('deleted_at');
    await t.db('webhook_deliveries').whereNot('status', 'delivered').update({ status: 'failed' });
  });

  const endpoint = async (events: string[], who = owner, teamId?: string, s = a) => {
    const created = await s.webhooks.create({ url: receiver.url, events, teamId }, who.actor);
    receiver.state.secret = created.secret;
    return created;
  };
  /** Runs the job's work on `instances` together, moving the clock on between rounds, until nothing is pending. */
  const deliverAll = async (instances: Services[], rounds = 10, stepMs = 10 * 60_000) => {
    for (let i = 0; i < rounds; i++) {
      await Promise.all(instances.map((s) => s.webhookDelivery.deliverDue()));
      const pending = await t.db('webhook_deliveries').where({ status: 'pending' }).count({ n: '*' }).first();
      if (Number(pending?.n) === 0) return;
      clock.advance(stepMs);
    }
  };
  const countById = (ids: string[]) => [...ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>()).values()];

  it('signs each attempt, retries a failing receiver with backoff, and is accepted exactly once', async () => {
    const created = await endpoint(['key.revoked']);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    receiver.state.failFirst = 2;
    const { key } = await makeKey(a, owner, { name: 'ci deploy' });
    await a.keys.revoke(key.id, owner.actor);

    await a.webhookDelivery.deliverDue();
    const [delivery] = await a.webhooks.deliveries(created.endpoint.id, owner.actor);
    expect(delivery).toMatchObject({ eventType: 'key.revoked', status: 'pending', attempts: 1, lastStatusCode: 500 });
    expect(delivery!.nextAttemptAt!.getTime() - clock.now().getTime()).toBe(30_000);
    // Not due yet: nothing is sent.
    await a.webhookDelivery.deliverDue();
    expect(receiver.received).toHaveLength(1);
    clock.advance(30_000);
    await a.webhookDelivery.deliverDue();
    expect((await a.webhooks.deliveries(created.endpoint.id, owner.actor))[0]!.nextAttemptAt!.getTime() - clock.now().getTime()).toBe(60_000);
    clock.advance(60_000);
    await a.webhookDelivery.deliverDue();

    expect(receiver.received.map((r) => [r.status, r.signatureOk])).toEqual([[500, true], [500, true], [200, true]]);
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(1);
    expect(receiver.accepted()[0]!.body).toMatchObject({ type: 'key.revoked', data: { keyId: key.id, keyName: 'ci deploy', reason: 'revoked' } });
    expect((await a.webhooks.deliveries(created.endpoint.id, owner.actor))[0]).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200 });
    clock.advance(3_600_000);
    await a.webhookDelivery.deliverDue();
    expect(receiver.received).toHaveLength(3);
  });

  it('gives up a day after the event, as failed', async () => {
    const created = await endpoint(['key.revoked']);
    receiver.state.failFirst = 1000;
    const { key } = await makeKey(a, owner);
    await a.keys.revoke(key.id, owner.actor);
    await deliverAll([a], 40, 3_600_000);
    const [d] = await a.webhooks.deliveries(created.endpoint.id, owner.actor);
    expect(d).toMatchObject({ status: 'failed', lastStatusCode: 500 });
    expect(d!.attempts).toBeGreaterThan(5);
    expect(d!.attempts).toBe(receiver.received.length);
  });

  it('two senders on two pools deliver each event once, each attempt sent once', async () => {
    await endpoint(['key.revoked']);
    receiver.state.failFirst = 2;
    const keys = await Promise.all(Array.from({ length: 6 }, () => makeKey(a, owner)));
    for (const { key } of keys) await a.keys.revoke(key.id, owner.actor);
    await deliverAll([a, b]);
    expect(receiver.accepted()).toHaveLength(6);
    expect(countById(receiver.accepted().map((r) => r.id))).toEqual([1, 1, 1, 1, 1, 1]);
    // Three attempts per event (two failures, one success), never an attempt sent by both.
    expect(countById(receiver.received.map((r) => r.id))).toEqual([3, 3, 3, 3, 3, 3]);
  });

  it('delivers, once, what a sender that died mid-claim left behind, after its claim runs out', async () => {
    await endpoint(['key.revoked']);
    const { key } = await makeKey(a, owner);
    await a.keys.revoke(key.id, owner.actor);
    // Instance a claims the delivery and "dies" before sending: its claim is never completed.
    const dead = await a.webhookDelivery.claim('dead-instance');
    expect(dead.rows).toHaveLength(1);
    await b.webhookDelivery.deliverDue();
    expect(receiver.received).toHaveLength(0);
    clock.advance(CLAIM_MS + 1);
    await b.webhookDelivery.deliverDue();
    await a.webhookDelivery.deliverDue();
    expect(receiver.accepted().map((r) => r.body.data.keyId)).toEqual([key.id]);
  });

  it('sends only the events an endpoint subscribes to, of its own scope', async () => {
    const other = await makeUser(a);
    await endpoint(['key.rotated']);
    const { key } = await makeKey(a, owner);
    const theirs = await makeKey(a, other);
    await a.keys.revoke((await makeKey(a, owner)).key.id, owner.actor);
    await a.keys.rotate(theirs.key.id, 0, other.actor);
    const rotated = await a.keys.rotate(key.id, 60, owner.actor);
    await deliverAll([a]);
    expect(receiver.accepted().map((r) => r.body.type)).toEqual(['key.rotated']);
    const { data } = receiver.accepted()[0]!.body;
    expect(data).toMatchObject({ keyId: key.id, successorId: rotated.key.id, gracePeriodSeconds: 60 });
    expect(JSON.stringify(receiver.received)).not.toContain(rotated.secret);
  });

  it('records key.leaked and key.revoked when a leaked key revokes itself, once', async () => {
    await endpoint(['key.leaked', 'key.revoked']);
    const { key, secret } = await makeKey(a, owner, { name: 'pasted in a gist' });
    await a.leaks.selfRevoke(secret, { ip: '203.0.113.9' });
    await a.leaks.selfRevoke(secret, { ip: '203.0.113.9' });
    await deliverAll([a]);
    expect(receiver.accepted().map((r) => [r.body.type, r.body.data.keyId, r.body.data.reason]).sort()).toEqual([
      ['key.leaked', key.id, 'self_revoked'], ['key.revoked', key.id, 'self_revoked'],
    ]);
    expect(JSON.stringify(receiver.received)).not.toContain(secret);
  });

  it('records key.expiring a week and a day ahead, then key.expired, each once', async () => {
    await endpoint(['key.expiring', 'key.expired']);
    const expiresAt = new Date(clock.now().getTime() + 10 * 24 * 3600_000);
    const { key } = await makeKey(a, owner, { expiresAt });
    const runExpiry = async () => {
      await a.keyExpiry.expireDueKeys({ userId: 'system', role: 'admin', via: 'system' });
      await a.webhookDelivery.deliverDue();
    };
    await runExpiry();
    clock.set(new Date(expiresAt.getTime() - 7 * 24 * 3600_000 + 1000));
    await runExpiry();
    await runExpiry();
    clock.set(new Date(expiresAt.getTime() - 3600_000));
    await runExpiry();
    await runExpiry();
    clock.set(expiresAt);
    await runExpiry();
    await runExpiry();
    // One round per clock step, so these arrive in order.
    expect(receiver.accepted().map((r) => [r.body.type, r.body.data.horizon])).toEqual([
      ['key.expiring', '7d'], ['key.expiring', '1d'], ['key.expired', undefined],
    ]);
    expect(receiver.accepted().every((r) => r.body.data.keyId === key.id && r.body.data.expiresAt === expiresAt.toISOString())).toBe(true);
  });

  it('turns a metered alert crossing into one key.limit_threshold event, on two instances at once', async () => {
    await endpoint(['key.limit_threshold', 'key.limit_reached']);
    const { key } = await makeKey(a, owner, { name: 'budgeted', spendLimitMicro: 10_000_000 });
    await spend(a, key.id, 5_000_000);
    await deliverAll([a, b]);
    expect(receiver.accepted().map((r) => r.body)).toEqual([{
      type: 'key.limit_threshold', timestamp: clock.now().toISOString(),
      data: expect.objectContaining({ keyId: key.id, keyName: 'budgeted', threshold: 50, spent: '5', limit: '10', currency: 'AUD' }),
    }]);
    await spend(a, key.id, 5_000_000);
    await deliverAll([a, b]);
    expect(receiver.accepted().map((r) => [r.body.type, r.body.data.threshold]).sort()).toEqual([
      ['key.limit_reached', 100], ['key.limit_threshold', 100], ['key.limit_threshold', 50], ['key.limit_threshold', 80],
    ]);
    expect(Number((await t.db('events').whereNotNull('firing_id').where({ key_id: key.id }).whereIn('type', ['key.limit_threshold', 'key.limit_reached']).count({ n: '*' }).first())?.n)).toBe(4);
    expect(new Set(receiver.accepted().map((r) => r.id)).size).toBe(4);
    // Every firing became exactly one event, whether or not an endpoint wanted it.
    const firings = (await t.db('alert_firings').orderBy('id').pluck('id')).map(Number);
    expect((await t.db('events').whereNotNull('firing_id').orderBy('firing_id').pluck('firing_id')).map(Number)).toEqual(firings);
  });

  it('delivers balance.threshold to the user and team.balance_threshold to the team’s endpoint, each once', async () => {
    const user = await makeUser(a); // Free plan: A$5.00 included a month, thresholds 50, 80, 100
    await endpoint(['balance.threshold', 'team.balance_threshold'], user);
    const { key } = await makeKey(a, user);
    await spend(a, key.id, 2_600_000); // 52 % of the included usage
    await spend(a, key.id, 100_000);
    await deliverAll([a, b]);
    expect(receiver.accepted().map((r) => [r.body.type, r.body.data.threshold])).toEqual([['balance.threshold', 50]]);

    receiver.received.length = 0;
    const team = await makeTeam(a, owner, { balanceMicro: 1_000_000 });
    await endpoint(['team.balance_threshold', 'balance.threshold'], owner, team.id);
    const teamKey = await makeKey(a, owner, { teamId: team.id });
    await spend(a, teamKey.key.id, 550_000); // 55 % of the team balance at its last top-up
    await spend(a, teamKey.key.id, 100_000);
    await deliverAll([a, b]);
    // The team's endpoint gets the team's crossing; the user's endpoint gets nothing of the team's.
    expect(receiver.accepted().map((r) => [r.body.type, r.body.data.threshold, r.body.data.teamId])).toEqual([['team.balance_threshold', 50, team.id]]);
  });

  it('sends a team’s events to the team’s endpoint, managed by its owners and admins only', async () => {
    const admin = await makeUser(a);
    const member = await makeUser(a);
    const team = await makeTeam(a, owner, { members: [[admin, 'admin'], [member, 'member']], balanceMicro: 10_000_000 });
    await expect(a.webhooks.create({ url: receiver.url, events: ['key.revoked'], teamId: team.id }, member.actor)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const created = await endpoint(['key.revoked'], admin, team.id);
    await expect(a.webhooks.deliveries(created.endpoint.id, member.actor)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(a.webhooks.delete(created.endpoint.id, member.actor)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await a.webhooks.list({ teamId: team.id }, owner.actor)).map((e) => e.id)).toEqual([created.endpoint.id]);
    const teamKey = await makeKey(a, member, { teamId: team.id });
    await a.keys.revoke(teamKey.key.id, member.actor);
    await a.keys.revoke((await makeKey(a, member)).key.id, member.actor);
    await deliverAll([a]);
    expect(receiver.accepted().map((r) => r.body.data.keyId)).toEqual([teamKey.key.id]);
  });

  it('sends a test event to one endpoint only, and nothing to a deleted endpoint', async () => {
    const first = await endpoint(['key.revoked']);
    const eventId = await a.webhooks.test(first.endpoint.id, owner.actor);
    await deliverAll([a]);
    expect(receiver.accepted().map((r) => [r.id, r.body.type])).toEqual([[eventId, 'webhook.test']]);
    const other = await makeUser(a);
    await expect(a.webhooks.test(first.endpoint.id, other.actor)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await a.keys.revoke((await makeKey(a, owner)).key.id, owner.actor);
    await a.webhooks.delete(first.endpoint.id, owner.actor);
    await deliverAll([a]);
    expect(receiver.accepted()).toHaveLength(1);
    expect(await a.webhooks.list({}, owner.actor)).toEqual([]);
  });

  describe('where deliveries may go', () => {
    it('refuses private, loopback and link-local URLs at creation unless the operator allows them', async () => {
      const strict = instance(t.db, false);
      for (const url of [
        'http://127.0.0.1/h', 'http://[::1]/h', 'http://[::ffff:127.0.0.1]/h', 'http://10.1.2.3/h', 'http://169.254.169.254/latest', 'http://192.168.0.10/',
        'http://100.64.0.1/', 'http://[fd00::1]/', 'http://[fe80::1]/', 'http://0.0.0.0/', 'http://localhost:3000/', 'http://2130706433/', 'http://0x7f.1/',
        'ftp://example.com/', 'file:///etc/passwd', 'https://user:pw@example.com/', 'not a url',
      ]) await expect(strict.webhooks.create({ url, events: ['key.revoked'] }, owner.actor), url).rejects.toMatchObject({ code: 'BAD_INPUT' });
      await expect(strict.webhooks.create({ url: 'https://hooks.example.com/mb', events: ['key.nope'] }, owner.actor)).rejects.toMatchObject({ code: 'BAD_INPUT' });
      await expect(strict.webhooks.create({ url: 'https://hooks.example.com/mb', events: ['key.revoked'] }, owner.actor)).resolves.toMatchObject({ endpoint: { url: 'https://hooks.example.com/mb' } });
    });

    it('refuses at delivery a host name that resolves to loopback when private targets are not allowed', async () => {
      await a.webhooks.create({ url: `http://localhost:${receiver.port}/hooks`, events: ['key.revoked'] }, owner.actor);
      const strict = instance(t.db, false);
      await a.keys.revoke((await makeKey(a, owner)).key.id, owner.actor);
      await strict.webhookDelivery.deliverDue();
      expect(receiver.received).toHaveLength(0);
      const row = await t.db('webhook_deliveries').orderBy('id', 'desc').first();
      expect(row).toMatchObject({ status: 'pending', attempts: 1, last_status_code: null });
      expect(row.last_error).toMatch(/refused/);
    });

    it('does not follow a redirect: a 3xx is a failed attempt', async () => {
      await endpoint(['key.revoked']);
      receiver.state.respond = (req, res) => {
        if (req.url !== '/hooks') return false;
        res.writeHead(307, { location: '/elsewhere' }).end();
        return true;
      };
      await a.keys.revoke((await makeKey(a, owner)).key.id, owner.actor);
      await a.webhookDelivery.deliverDue();
      expect(receiver.received.filter((r) => r.path === '/elsewhere')).toHaveLength(0);
      expect(await t.db('webhook_deliveries').orderBy('id', 'desc').first()).toMatchObject({ status: 'pending', last_status_code: 307 });
    });
  });
});
