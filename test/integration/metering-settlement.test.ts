import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Hold } from '../../src/domain/billing/metering.service.js';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { toMicro } from '../../src/domain/money.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { okSettlement as ok } from '../support/metering-rows.js';

describe(`settlement is exactly once (${dialect})`, () => {
  let t: TestDb;
  let services: Services;
  let clock: ManualClock;

  beforeAll(async () => {
    t = await createTestDb();
    clock = new ManualClock(new Date());
    services = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney' });
  });
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t?.destroy());

  async function admitted(estimateMicro = 1_000) {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key } = await makeKey(services, owner);
    const hold = await services.metering.admit({ requestId: newId(), keyId: key.id, estimateMicro, model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', streamed: false });
    return { owner, key, hold };
  }
  const keyRow = (id: string) => t.db('api_keys').where({ id }).first();
  const eventsOf = (hold: Hold) => t.db('usage_events').where({ request_id: hold.requestId });

  it('charges a replayed settlement once, whatever the replay says', async () => {
    const { key, hold } = await admitted();
    expect(await services.metering.settle(hold, ok(300))).toEqual({ applied: true, costMicro: 300 });
    expect(await services.metering.settle(hold, ok(300))).toEqual({ applied: false, costMicro: 0 });
    expect(await services.metering.settle(hold, ok(999))).toEqual({ applied: false, costMicro: 0 });
    expect(await eventsOf(hold)).toHaveLength(1);
    const row = await keyRow(key.id);
    expect(toMicro(row.spend_micro)).toBe(300);
    expect(Number(row.request_count)).toBe(1);
  });

  it('applies one of several simultaneous settlements of the same request (proxy and release job racing)', async () => {
    const { key, hold } = await admitted();
    const results = await Promise.all([
      services.metering.settle(hold, ok(250)),
      services.metering.settle(hold, { ...ok(0), outcome: 'abandoned', estimated: true, httpStatus: 0 }),
      services.metering.settle(hold, ok(250)),
      services.metering.settle(hold, ok(250)),
    ]);
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect(await eventsOf(hold)).toHaveLength(1);
    const event = (await eventsOf(hold))[0];
    expect(toMicro((await keyRow(key.id)).spend_micro)).toBe(toMicro(event.cost_micro));
  });

  it('settles before it admits within one batch: a released hold is headroom for the admissions beside it', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key } = await makeKey(services, owner, { spendLimitMicro: 1_000 });
    const { key: other } = await makeKey(services, owner);
    // Owner and team given, as the proxy gives them: the admission is queued at once, in call order.
    const request = (keyId: string, estimateMicro: number) => services.metering.admit({
      requestId: newId(), keyId, ownerId: owner.user.id, teamId: null, estimateMicro, model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', streamed: false,
    });
    const first = await request(key.id, 1_000); // holds the whole limit
    // One batch in flight (another key's admission) makes the next two wait and go together, the admission first
    // in arrival order. Had it been applied before the settlement, the limit would still be held: 429 pending.
    const busy = request(other.id, 10);
    const second = request(key.id, 800);
    const settled = services.metering.settle(first, ok(100));
    await busy;
    expect(await settled).toEqual({ applied: true, costMicro: 100 });
    expect((await second).keyHoldMicro).toBe(800);
    const row = await keyRow(key.id);
    expect([toMicro(row.spend_micro), toMicro(row.held_micro)]).toEqual([100, 800]);
  });

  it('leaves both rows or neither when the database fails mid-settlement, and retries until it commits', async () => {
    const { key, hold } = await admitted();
    // The usage event is inserted before the ledger entries: with the ledger table gone, the transaction fails
    // after its first writes, and must take them all back.
    await t.db.schema.renameTable('ledger_entries', 'ledger_entries_away');
    const retriedBefore = services.metering.settlements.retried;
    let settling: Promise<unknown> | undefined;
    try {
      settling = services.metering.settle(hold, ok(400));
      await vi.waitFor(() => expect(services.metering.settlements.retried - retriedBefore).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
      expect(services.metering.settlements.pending).toBe(1);
      expect(await eventsOf(hold)).toHaveLength(0);
      expect(await t.db('holds').where({ request_id: hold.requestId })).toHaveLength(1);
      const row = await keyRow(key.id);
      expect(toMicro(row.spend_micro)).toBe(0);
      expect(toMicro(row.held_micro)).toBe(hold.keyHoldMicro);
    } finally {
      await t.db.schema.renameTable('ledger_entries_away', 'ledger_entries');
    }
    // The hold survived every failed attempt, so the retry that finally commits applies, once.
    expect(await settling).toEqual({ applied: true, costMicro: 400 });
    expect(services.metering.settlements.pending).toBe(0);
    expect(await eventsOf(hold)).toHaveLength(1);
    const ledger = await t.db('ledger_entries').where({ request_id: hold.requestId }).sum({ s: 'amount_micro' }).first();
    expect(toMicro(ledger?.s)).toBe(-400);
    expect(toMicro((await keyRow(key.id)).spend_micro)).toBe(400);
    await expectMeteringInvariants(t.db);
  });

  it('keeps a live request’s hold from being taken for abandoned, and lets an unrenewed one go', async () => {
    const { hold } = await admitted();
    const ttl = services.metering.holdTtlMs;
    // Another instance (the one whose release job runs) sees only the deadline.
    const elsewhere = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney' }).metering;
    const staleThere = async () => (await elsewhere.staleHolds()).map((h) => h.requestId);
    clock.advance(ttl - 1_000);
    expect(await services.metering.renewHolds()).toBeGreaterThanOrEqual(1);
    expect((await t.db('holds').where({ request_id: hold.requestId }).first()).deadline_at).toBeDefined();
    clock.advance(2_000);
    expect(await staleThere()).not.toContain(hold.requestId);
    clock.advance(ttl);
    // Past its deadline: the admitting instance still knows it is live and never lists it; the others do.
    expect(await staleThere()).toContain(hold.requestId);
    expect((await services.metering.staleHolds()).map((h) => h.requestId)).not.toContain(hold.requestId);
    // A release that finds it renewed meanwhile leaves it alone.
    await services.metering.renewHolds();
    expect(await elsewhere.release(hold)).toEqual({ applied: false, costMicro: 0 });
    await services.metering.settle(hold, ok(0));
    expect(await t.db('holds').where({ request_id: hold.requestId })).toHaveLength(0);
  });

  it.runIf(onMysql)('survives being the victim of a real deadlock: rolled back whole, retried, charged once', async () => {
    const { owner, key, hold } = await admitted();
    const other = t.another();
    const trx = await other.transaction();
    try {
      // A second transaction takes the payer's row first — against the lock order — and makes itself heavy, so
      // InnoDB picks the settlement as the deadlock victim.
      await trx('personal_balances').where({ user_id: owner.user.id }).forUpdate().first();
      await trx('job_locks').insert(Array.from({ length: 200 }, (_, i) => ({ name: `deadlock-ballast-${i}` })));
      const settling = services.metering.settle(hold, ok(500));
      settling.catch(() => undefined);
      // The settlement holds the key row and waits for the payer's row…
      await waitFor(async () => {
        // Its read phase is one multi-statement query: the session is busy in it, waiting on the balance row lock.
        const [rows] = await t.db.raw("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE id <> CONNECTION_ID() AND command = 'Query' AND info LIKE ? AND info LIKE ?", ['%FROM personal_balances b WHERE b.user_id IN%FOR UPDATE%', `%'${owner.user.id}'%`]);
        return Number(rows[0].n) === 1;
      });
      // …and now the second transaction asks for the key row: a cycle. Getting it proves the settlement was rolled back.
      await trx('api_keys').where({ id: key.id }).forUpdate().first();
      expect(await eventsOf(hold)).toHaveLength(0);
      expect(toMicro((await keyRow(key.id)).spend_micro)).toBe(0);
      await trx.rollback();
      expect(await settling).toEqual({ applied: true, costMicro: 500 });
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
    expect(await eventsOf(hold)).toHaveLength(1);
    expect(toMicro((await keyRow(key.id)).spend_micro)).toBe(500);
    expect(await t.db('job_locks').where('name', 'like', 'deadlock-ballast-%')).toHaveLength(0);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting for the settlement to block');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
