import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/auth/secret-format.js';
import { ManualClock } from '../../src/domain/clock.js';
import { SCHEDULED_GRACE_SECONDS } from '../../src/domain/keys/rotation.service.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { onMysql } from '../support/db.js';
import { dialect } from '../support/db.js';
import { adminActor, makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { bearer, rawCall, tokenFor } from '../support/trpc.js';
import { startReceiver } from '../support/webhook-receiver.js';

const DAY = 24 * 3600_000;
const TZ = 'Australia/Sydney';

/**
 * Rotation that happens (docs/security.md, docs/webhooks.md): rotate-by dates from the maximum key age, the
 * key.rotation_due warnings once per key and horizon (two instances at once), and scheduled rotation delivering the
 * new secret only inside a signed webhook — committed only after a 2xx, never stored, exactly one successor.
 */
describe(`rotation due and scheduled rotation (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let a: Services;
  let b: Services;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    clock = new ManualClock('2026-12-02T00:00:00.000Z');
    app = await startTestApp({ clock, env: { MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    a = app.services;
    b = createServices({ db: app.t.another(), clock, timeZone: TZ, webhooks: { allowPrivate: true } });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await app?.close();
  });
  beforeEach(() => {
    receiver.received.length = 0;
    receiver.state.failFirst = 0;
    receiver.state.respond = null;
  });

  const dueEvents = async (keyId: string) =>
    ((await app.t.db('events').where({ type: 'key.rotation_due', key_id: keyId }).orderBy('created_at').select('payload')) as Array<{ payload: string }>)
      .map((r) => JSON.parse(r.payload).data as { horizon: string; rotateBy: string });
  const v1Key = (secret: string) => fetch(`${app.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } });

  it('shows rotate-by (created + the stricter max age) in keys.get, keys.list and GET /v1/key; null without a rule', async () => {
    const owner = await makeUser(a);
    const team = await makeTeam(a, owner);
    const personal = await makeKey(a, owner);
    const teamKey = await makeKey(a, owner, { teamId: team.id });
    expect((await a.keys.get(personal.key.id, owner.actor)).rotateBy).toBeNull();

    await a.keyPolicy.setTeam(team.id, { maxKeyAgeDays: 30 }, owner.actor);
    const token = await tokenFor(app, owner);
    const get = async (id: string) => (await rawCall(app, 'query', 'keys.get', { id }, bearer(token))).body.result.data;
    expect((await get(teamKey.key.id)).rotateBy).toBe(new Date(teamKey.key.createdAt.getTime() + 30 * DAY).toISOString());
    expect((await get(personal.key.id)).rotateBy).toBeNull();

    // The installation's 10 days are stricter than the team's 30: they win for the team key too.
    await a.keyPolicy.setInstallation({ maxKeyAgeDays: 10 }, adminActor);
    try {
      const list = (await rawCall(app, 'query', 'keys.list', {}, bearer(token))).body.result.data as Array<{ id: string; rotateBy: string | null }>;
      const byId = new Map(list.map((k) => [k.id, k.rotateBy]));
      expect(byId.get(teamKey.key.id)).toBe(new Date(teamKey.key.createdAt.getTime() + 10 * DAY).toISOString());
      expect(byId.get(personal.key.id)).toBe(new Date(personal.key.createdAt.getTime() + 10 * DAY).toISOString());
      const facts = await (await v1Key(personal.secret)).json();
      expect(facts).toMatchObject({ rotate_by: new Date(personal.key.createdAt.getTime() + 10 * DAY).toISOString(), auto_rotate: false });
      // A revoked key is not due for anything.
      await a.keys.revoke(personal.key.id, owner.actor);
      expect((await get(personal.key.id)).rotateBy).toBeNull();
    } finally {
      await a.keyPolicy.setInstallation({ maxKeyAgeDays: null }, adminActor);
    }
  });

  it('records key.rotation_due 7 days and 1 day ahead and when overdue, each once, with two instances running at once', async () => {
    const owner = await makeUser(a);
    const team = await makeTeam(a, owner);
    await a.keyPolicy.setTeam(team.id, { maxKeyAgeDays: 20 }, owner.actor);
    const { key } = await makeKey(a, owner, { teamId: team.id });
    const rotateBy = key.createdAt.getTime() + 20 * DAY;
    const runBoth = () => Promise.all([a.keyRotation.warnRotationDue(clock.now()), b.keyRotation.warnRotationDue(clock.now())]);

    clock.set(new Date(rotateBy - 7 * DAY - 1));
    await runBoth();
    expect(await dueEvents(key.id)).toEqual([]);

    clock.set(new Date(rotateBy - 7 * DAY));
    await runBoth();
    await runBoth();
    expect((await dueEvents(key.id)).map((e) => e.horizon)).toEqual(['7d']);

    clock.set(new Date(rotateBy - DAY));
    for (let i = 0; i < 3; i++) await runBoth();
    expect((await dueEvents(key.id)).map((e) => e.horizon)).toEqual(['7d', '1d']);
    expect((await dueEvents(key.id))[1]!.rotateBy).toBe(new Date(rotateBy).toISOString());

    clock.set(new Date(rotateBy));
    await runBoth();
    await runBoth();
    expect((await dueEvents(key.id)).map((e) => e.horizon)).toEqual(['7d', '1d', 'overdue']);
    // The key is not broken by being overdue.
    expect((await a.keys.get(key.id, owner.actor)).status).toBe('active');
  });

  it('refuses autoRotate until the owner has an endpoint subscribed to key.rotated_secret', async () => {
    const owner = await makeUser(a);
    const token = await tokenFor(app, owner);
    const refused = await rawCall(app, 'mutation', 'keys.create', { name: 'ci', autoRotate: true }, bearer(token));
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('key.rotated_secret');
    await a.webhooks.create({ url: receiver.url, events: ['key.rotated'] }, owner.actor);
    expect((await rawCall(app, 'mutation', 'keys.create', { name: 'ci', autoRotate: true }, bearer(token))).status).toBe(400);
    await a.webhooks.create({ url: receiver.url, events: ['key.rotated_secret'] }, owner.actor);
    const made = await rawCall(app, 'mutation', 'keys.create', { name: 'ci', autoRotate: true }, bearer(token));
    expect(made.status).toBe(200);
    expect(made.body.result.data.key.autoRotate).toBe(true);
    const off = await rawCall(app, 'mutation', 'keys.update', { id: made.body.result.data.key.id, autoRotate: false }, bearer(token));
    expect(off.body.result.data.autoRotate).toBe(false);
    // A team key's new secret goes to the team's endpoints only: the owner's personal one does not count.
    const team = await makeTeam(a, owner);
    const teamRefused = await rawCall(app, 'mutation', 'keys.create', { name: 'team ci', teamId: team.id, autoRotate: true }, bearer(token));
    expect(teamRefused.status).toBe(400);
    expect(teamRefused.text).toContain('a team webhook');
  });

  it('rotates at rotate-by: the new secret arrives signed, once; it works on /v1, the old one through the grace period; no table holds it', async () => {
    const owner = await makeUser(a, { prepaidMicro: 10_000_000 });
    const team = await makeTeam(a, owner, { balanceMicro: 10_000_000 });
    await a.keyPolicy.setTeam(team.id, { maxKeyAgeDays: 5 }, owner.actor);
    const hook = await a.webhooks.create({ url: receiver.url, events: ['key.rotated_secret', 'key.rotated'], teamId: team.id }, owner.actor);
    receiver.state.secret = hook.secret;
    const old = await a.keys.create({ name: 'deploy bot', teamId: team.id, autoRotate: true }, owner.actor);
    const rotateBy = old.key.createdAt.getTime() + 5 * DAY;

    clock.set(new Date(rotateBy - 1));
    expect((await a.keyRotation.rotateDueKeys()).rotated).toEqual([]);
    expect(receiver.received).toHaveLength(0);

    // The receiver fails: no successor, the old key untouched, the claim released for the next run.
    clock.set(new Date(rotateBy));
    receiver.state.failFirst = 1;
    expect(await a.keyRotation.rotateDueKeys()).toEqual({ rotated: [], failed: [old.key.id] });
    expect(receiver.received.map((r) => r.status)).toEqual([500]);
    const stillOld = await app.t.db('api_keys').where({ id: old.key.id }).first();
    expect(stillOld.rotated_to_id).toBeNull();
    expect(stillOld.auto_rotate_claimed_by).toBeNull();
    expect(Number((await app.t.db('api_keys').where({ team_id: team.id }).count({ n: '*' }).first())!.n)).toBe(1);
    const failedSecret = receiver.received[0]!.body.data.secret as string;

    // Next run (the receiver is back): two instances at once; one sends, one successor.
    receiver.state.failFirst = 0;
    clock.advance(60_000);
    const runs = await Promise.all([a.keyRotation.rotateDueKeys(), b.keyRotation.rotateDueKeys()]);
    expect(runs.flatMap((r) => r.rotated)).toEqual([old.key.id]);
    expect(runs.flatMap((r) => r.failed)).toEqual([]);
    const accepted = receiver.accepted();
    expect(accepted).toHaveLength(1);
    const delivery = accepted[0]!;
    expect(delivery.signatureOk).toBe(true);
    expect(delivery.body.type).toBe('key.rotated_secret');
    const secret = delivery.body.data.secret as string;
    expect(secret).toMatch(/^mbk_/);
    expect(secret).not.toBe(failedSecret);
    const successors = await app.t.db('api_keys').where({ team_id: team.id }).whereNot({ id: old.key.id });
    expect(successors).toHaveLength(1);
    expect(successors[0].id).toBe(delivery.body.data.successorId);
    expect(successors[0].key_hash).toBe(hashSecret(secret));
    expect(Boolean(successors[0].auto_rotate)).toBe(true);

    // More runs deliver nothing more.
    for (let i = 0; i < 2; i++) await Promise.all([a.keyRotation.rotateDueKeys(), b.keyRotation.rotateDueKeys()]);
    expect(receiver.received.filter((r) => r.body.type === 'key.rotated_secret')).toHaveLength(2);

    // The new key works on /v1; the old one too, until its grace period ends.
    expect((await v1Key(secret)).status).toBe(200);
    expect((await v1Key(old.secret)).status).toBe(200);
    const retireAt = Date.parse(delivery.body.data.retireAt as string);
    expect(retireAt).toBe(rotateBy + 60_000 + SCHEDULED_GRACE_SECONDS * 1000);
    clock.set(new Date(retireAt - 1));
    expect((await v1Key(old.secret)).status).toBe(200);
    clock.set(new Date(retireAt));
    expect((await v1Key(old.secret)).status).toBe(401);
    expect((await v1Key(secret)).status).toBe(200);

    // The delivery history records both attempts, without the secret; the key.rotated event goes through the outbox.
    const history = await a.webhooks.deliveries(hook.endpoint.id, owner.actor);
    expect(history.filter((d) => d.eventType === 'key.rotated_secret').map((d) => d.status).sort()).toEqual(['delivered', 'failed']);
    expect(history.some((d) => d.eventType === 'key.rotated' && d.status === 'pending')).toBe(true);

    // Grep every table for both secrets ever sent.
    const tables: string[] = onMysql
      ? ((await app.t.db.raw('SHOW TABLES'))[0] as Array<Record<string, string>>).map((r) => Object.values(r)[0]!)
      : (await app.t.db('sqlite_master').where({ type: 'table' }).select('name')).map((r: { name: string }) => r.name);
    const secretBody = secret.slice(4);
    for (const table of tables)
      for (const row of await app.t.db(table).select('*')) {
        const text = JSON.stringify(row);
        expect(text, table).not.toContain(secretBody);
        expect(text, table).not.toContain(failedSecret.slice(4));
      }
    expect(app.logs.join('')).not.toContain(secretBody);
  });

  it('does not rotate a key without autoRotate, nor one whose endpoints are gone (it stays due and is retried)', async () => {
    const owner = await makeUser(a);
    const team = await makeTeam(a, owner);
    await a.keyPolicy.setTeam(team.id, { maxKeyAgeDays: 1 }, owner.actor);
    const hook = await a.webhooks.create({ url: receiver.url, events: ['key.rotated_secret'], teamId: team.id }, owner.actor);
    const manual = await makeKey(a, owner, { teamId: team.id });
    const auto = await a.keys.create({ name: 'auto', teamId: team.id, autoRotate: true }, owner.actor);
    await a.webhooks.delete(hook.endpoint.id, owner.actor);
    clock.advance(DAY);
    const run = await a.keyRotation.rotateDueKeys();
    expect(run.rotated).toEqual([]);
    expect(run.failed).toContain(auto.key.id);
    expect(run.failed).not.toContain(manual.key.id);
    expect((await app.t.db('api_keys').where({ id: auto.key.id }).first()).rotated_to_id).toBeNull();
    // Retried at the next run (a minute), then backing off: 2 minutes after the second failure.
    expect((await a.keyRotation.rotateDueKeys()).failed).not.toContain(auto.key.id);
    clock.advance(60_000);
    expect((await a.keyRotation.rotateDueKeys()).failed).toContain(auto.key.id);
    clock.advance(60_000);
    expect((await a.keyRotation.rotateDueKeys()).failed).not.toContain(auto.key.id);
    clock.advance(60_000);
    expect((await a.keyRotation.rotateDueKeys()).failed).toContain(auto.key.id);
  });
});
