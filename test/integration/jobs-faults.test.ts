import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/knex.js';
import { toBool } from '../../src/db/rows.js';
import { MeteringRefusal } from '../../src/domain/billing/refusal.js';
import { ManualClock } from '../../src/domain/clock.js';
import { DEFAULT_HOLD_TTL_MS } from '../../src/domain/services.js';
import { toMicro } from '../../src/domain/money.js';
import { dialect, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { admit, countRows, jobFixture, jobInstance, settle, type JobInstance } from '../support/jobs.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const AUD = 1_000_000;
const HOLD_TTL_MS = DEFAULT_HOLD_TTL_MS;

/**
 * The MySQL session of this test's schema running a query that contains `text` and waiting for a lock, if there is
 * one (other test runs may share the server).
 */
async function sessionBlockedIn(db: Db, text: string): Promise<number | null> {
  const [rows] = await db.raw(
    "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = DATABASE() AND COMMAND = 'Query' AND INFO LIKE ? AND STATE LIKE '%lock%'",
    [`%${text}%`],
  );
  return rows.length === 1 ? Number(rows[0].id) : null;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function moneyState(db: Db, keyId: string, teamId: string, options = { ledger: true }) {
  const key = await db('api_keys').where({ id: keyId }).first();
  const team = await db('teams').where({ id: teamId }).first();
  return {
    keySpend: toMicro(key.spend_micro),
    keyHeld: toMicro(key.held_micro),
    requests: Number(key.request_count),
    teamBalance: toMicro(team.balance_micro),
    teamHeld: toMicro(team.held_micro),
    events: await countRows(db, 'usage_events', { key_id: keyId }),
    ...(options.ledger ? { ledger: await countRows(db, 'ledger_entries', { key_id: keyId }) } : {}),
  };
}

describe(`faults around metering (${dialect})`, () => {
  let t: TestDb;
  let clock: ManualClock;
  let a: JobInstance;
  beforeAll(async () => ({ t, clock, a } = await jobFixture()));
  // Independently of the jobs' own accounting: every cache equals its ledger sum after every test.
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t.destroy());

  async function teamWithKey() {
    const owner = await makeUser(a.services);
    const team = await makeTeam(a.services, owner, { balanceMicro: 10 * AUD });
    const { key } = await makeKey(a.services, owner, { teamId: team.id });
    return { owner, team, key };
  }

  it('a database error between the usage-event insert and the debit leaves neither; the retry charges once', async () => {
    const { team, key } = await teamWithKey();
    // A separate pool plays the proxy instance whose settlement fails.
    const proxy = jobInstance(t.another(), clock);
    const hold = await admit(proxy.services, key.id, 2 * AUD);
    const before = await moneyState(t.db, key.id, team.id);

    // The ledger insert fails after the usage event (and, on MySQL, the key and team updates of the same write
    // phase) has run inside the transaction: the table it writes to is gone.
    await t.db.schema.renameTable('ledger_entries', 'ledger_entries_away');
    let settling: Promise<{ applied: boolean }> | undefined;
    try {
      settling = settle(proxy.services, hold, 1_500_000);
      // Every attempt fails and is rolled back whole; the settlement keeps being retried.
      await waitFor(async () => proxy.services.metering.settlements.retried >= 2);
      const { ledger: _, ...rows } = before;
      expect(await moneyState(t.db, key.id, team.id, { ledger: false })).toEqual(rows);
      expect(await countRows(t.db, 'usage_events', { request_id: hold.requestId })).toBe(0);
      expect(await countRows(t.db, 'holds', { request_id: hold.requestId })).toBe(1);
    } finally {
      await t.db.schema.renameTable('ledger_entries_away', 'ledger_entries');
    }

    // Once the table is back the retry commits: applied once, and a replay changes nothing.
    expect((await settling)?.applied).toBe(true);
    expect((await settle(proxy.services, hold, 1_500_000)).applied).toBe(false);
    const after = await moneyState(t.db, key.id, team.id);
    expect(after).toMatchObject({ keySpend: 1_500_000, keyHeld: 0, requests: 1, teamBalance: 10 * AUD - 1_500_000, teamHeld: 0, events: 1, ledger: 1 });
    expect((await a.run('reconcile')).summary).toMatch(/^0 drifts corrected, 0 need attention/);
  });

  describe.runIf(onMysql)('the settlement connection killed mid-transaction', () => {
    it('rolls back the usage event with the rest: both rows or neither', async () => {
      const { team, key } = await teamWithKey();
      const proxy = jobInstance(t.another(), clock);
      const hold = await admit(proxy.services, key.id, 2 * AUD);

      // Another session write-locks the ledger table, so the settlement's write phase runs its usage-event insert
      // (and the key and team updates) and then blocks at the ledger insert. There, mid-transaction, the server
      // ends its session, as an operator's KILL or a failover would.
      const blocker = await t.db.client.acquireConnection();
      let settling: Promise<{ applied: boolean }> | undefined;
      try {
        await t.db.raw('LOCK TABLES ledger_entries WRITE').connection(blocker);
        settling = settle(proxy.services, hold, 1_500_000);
        settling.catch(() => undefined);
        let victim: number | null = null;
        // The processlist shows the statement of the multi-statement write phase now running: the ledger insert.
        await waitFor(async () => (victim = await sessionBlockedIn(t.db, 'INSERT INTO ledger_entries')) !== null);
        const [rows] = await t.db.raw('SELECT COUNT(*) AS n FROM usage_events WHERE request_id = ?', [hold.requestId]);
        expect(Number(rows[0].n)).toBe(0); // not visible outside the transaction
        await t.db.raw('KILL CONNECTION ?', [victim]);
        await waitFor(async () => proxy.services.metering.settlements.retried >= 1);
      } finally {
        await t.db.raw('UNLOCK TABLES').connection(blocker);
        await t.db.client.releaseConnection(blocker);
      }
      // The settlement is retried on a new connection and commits. Had the killed transaction left its usage event
      // behind, the retry would collide with it (unique request id) and never commit; it commits, once.
      expect((await settling)?.applied).toBe(true);
      expect(await countRows(t.db, 'usage_events', { request_id: hold.requestId })).toBe(1);
      expect(await moneyState(t.db, key.id, team.id)).toMatchObject({ keySpend: 1_500_000, teamBalance: 10 * AUD - 1_500_000, events: 1, ledger: 1, keyHeld: 0, teamHeld: 0 });
      expect((await a.run('reconcile')).summary).toMatch(/^0 drifts corrected, 0 need attention/);
    });
  });

  it('a process killed after admission: the job releases the hold past its deadline and the key’s headroom comes back', async () => {
    const owner = await makeUser(a.services); // Free: 5 AUD included
    const { key } = await makeKey(a.services, owner, { spendLimitMicro: AUD });
    // Another process admits a request for all of the key's headroom... and dies: it never settles nor renews.
    const dying = jobInstance(t.db, clock);
    const hold = await admit(dying.services, key.id, AUD);
    await dying.services.metering.shutdown();
    const refused = await admit(a.services, key.id, 100_000).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(MeteringRefusal);
    expect((refused as MeteringRefusal).reason).toBe('spend_limit_pending');

    clock.advance(HOLD_TTL_MS - 1);
    expect((await a.run('release-holds')).summary).toBe('0 released, 0 already settled');
    clock.advance(1);
    expect(await a.run('release-holds')).toMatchObject({ result: 'ok', summary: '1 released, 0 already settled' });

    const event = await t.db('usage_events').where({ request_id: hold.requestId }).first();
    expect(event).toMatchObject({ outcome: 'abandoned', key_id: key.id, http_status: 0 });
    expect(toBool(event.estimated)).toBe(true);
    expect(toMicro(event.cost_micro)).toBe(0);
    expect(await countRows(t.db, 'holds')).toBe(0);
    const keyRow = await t.db('api_keys').where({ id: key.id }).first();
    expect([toMicro(keyRow.held_micro), toMicro(keyRow.spend_micro), keyRow.status]).toEqual([0, 0, 'active']);
    expect(toMicro((await t.db('personal_balances').where({ user_id: owner.user.id }).first()).held_micro)).toBe(0);

    // Headroom is back: the next request is admitted for the whole limit again.
    const next = await admit(a.services, key.id, AUD);
    expect(next.keyHoldMicro).toBe(AUD);
    await settle(a.services, next, 10);
    // The dead process's late settlement, should it ever come, changes nothing.
    expect((await settle(a.services, hold, 500_000)).applied).toBe(false);
    expect((await a.run('release-holds')).summary).toBe('0 released, 0 already settled');
    expect((await a.run('reconcile')).summary).toMatch(/^0 drifts corrected, 0 need attention/);
  });

  it('a release that fails for one hold fails the run (counted, recorded) and releases the others', async () => {
    const { team, key } = await teamWithKey();
    const dying = jobInstance(t.db, clock);
    const good = await admit(dying.services, key.id, AUD);
    await dying.services.metering.shutdown();
    // A hold whose payer row is gone cannot be settled: the job must report it, not stop at it.
    await t.db('holds').insert({
      request_id: 'req_orphan', key_id: key.id, user_id: 'no-such-user', team_id: null, amount_micro: 1, model: 'm',
      provider: 'openai', endpoint: '/v1/chat/completions', streamed: false, created_at: clock.now(), deadline_at: clock.now(),
    });
    clock.advance(HOLD_TTL_MS);
    const run = await a.run('release-holds');
    expect(run).toMatchObject({ result: 'failed', summary: '1 released, 0 already settled, 1 failed' });
    expect(await countRows(t.db, 'usage_events', { request_id: good.requestId })).toBe(1);
    expect(toMicro((await t.db('teams').where({ id: team.id }).first()).held_micro)).toBe(0);
    expect((await t.db('job_locks').where({ name: 'release-holds' }).first()).last_result).toMatch(/^failed: /);
    expect(a.logs.some((l) => l.includes('releasing a stale hold failed') && l.includes('req_orphan'))).toBe(true);
    await t.db('holds').where({ request_id: 'req_orphan' }).delete();
  });

  describe.runIf(onMysql)('the proxy settling while the job releases', () => {
    it('applies exactly one of the two for every request', async () => {
      const { team, key } = await teamWithKey();
      const holds = [];
      for (let i = 0; i < 10; i++) holds.push(await admit(a.services, key.id, 200_000));
      clock.advance(HOLD_TTL_MS);
      const b = jobInstance(t.another(), clock);
      const [job, ...settled] = await Promise.all([b.run('release-holds'), ...holds.map((h) => settle(a.services, h, 100_000))]);
      expect(job.result).toBe('ok');
      const charged = settled.filter((s) => s.applied).length;
      expect(Number(/^(\d+) released/.exec(job.summary)?.[1])).toBe(10 - charged);
      const events = await t.db('usage_events').whereIn('request_id', holds.map((h) => h.requestId));
      expect(events).toHaveLength(10);
      expect(events.filter((e: Record<string, unknown>) => e.outcome === 'ok')).toHaveLength(charged);
      const state = await moneyState(t.db, key.id, team.id);
      expect(state).toMatchObject({ keySpend: charged * 100_000, keyHeld: 0, teamHeld: 0, teamBalance: 10 * AUD - charged * 100_000 });
      expect((await a.run('reconcile')).summary).toMatch(/^0 drifts corrected, 0 need attention/);
    });
  });
});
