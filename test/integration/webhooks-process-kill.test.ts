import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { CLAIM_MS } from '../../src/domain/webhooks/delivery.service.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startReceiver } from '../support/webhook-receiver.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

/**
 * A sender process killed (SIGKILL) in the middle of an attempt: `npm run cli -- jobs:run deliver-webhooks` claims
 * the delivery and POSTs it to a receiver that never answers; it dies; after the claim runs out another instance
 * sends it, and the receiver accepts the event exactly once.
 */
describe(`webhook delivery across a process kill (${dialect})`, { timeout: 120_000 }, () => {
  let t: TestDb;
  let clock: ManualClock;
  let services: Services;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    t = await createTestDb();
    clock = new ManualClock(new Date());
    services = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney', webhooks: { allowPrivate: true, random: () => 0 } });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await t?.destroy();
  });

  it('delivers once what a killed sender had claimed and was sending', async () => {
    const owner = await makeUser(services);
    const created = await services.webhooks.create({ url: receiver.url, events: ['key.revoked'] }, owner.actor);
    receiver.state.secret = created.secret;
    const { key } = await makeKey(services, owner);
    await services.keys.revoke(key.id, owner.actor);

    let hung = 0;
    // The first attempt is received and never answered: the sender is mid-attempt when it is killed.
    receiver.state.respond = () => ++hung === 1;
    const env = {
      ...process.env, LOG_LEVEL: 'warn', MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '1', DATABASE_URL: t.url ?? '', ...(t.sqlitePath && { SQLITE_PATH: t.sqlitePath }),
    };
    const child = spawn(TSX, ['src/cli.ts', 'jobs:run', 'deliver-webhooks'], { cwd: ROOT, env, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await vi.waitFor(() => expect(hung).toBe(1), { timeout: 60_000, interval: 50 });
    const claim = await t.db('webhook_deliveries').first('claimed_by', 'claimed_until', 'status');
    expect(claim).toMatchObject({ status: 'pending', claimed_by: expect.any(String) });
    child.kill('SIGKILL');
    await exited;

    // Within the dead sender's claim nobody sends it again; after it, this instance does, once.
    await services.webhookDelivery.deliverDue();
    expect(receiver.received).toHaveLength(0);
    clock.set(new Date(Date.now() + CLAIM_MS + 1000));
    await services.webhookDelivery.deliverDue();
    await services.webhookDelivery.deliverDue();
    expect(receiver.accepted().map((r) => [r.body.type, r.body.data.keyId, r.signatureOk])).toEqual([['key.revoked', key.id, true]]);
    expect(await t.db('webhook_deliveries').first('status', 'attempts', 'claimed_by')).toMatchObject({ status: 'delivered', attempts: 1, claimed_by: null });
  });
});
