import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/knex.js';
import { systemActor } from '../../src/domain/actor.js';
import { releaseStaleHolds } from '../../src/domain/billing/stale-holds.js';
import { ManualClock } from '../../src/domain/clock.js';
import { listJobStatus } from '../../src/domain/jobs/job-locks.js';
import { JOB_NAMES } from '../../src/jobs/job.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { admit, countRows, jobInstance, spend, type JobInstance } from '../support/jobs.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const AUD = 1_000_000;

/**
 * Work for every job at once: keys about to expire, requests admitted and never settled, corrupted caches, and
 * balances in the period before `boundary`. Returns what each job should change, exactly once.
 */
async function prepareWork(db: Db, a: JobInstance, clock: ManualClock, boundary: Date) {
  clock.set(new Date(boundary.getTime() - 3_600_000));
  const users = await Promise.all([1, 2, 3].map(() => makeUser(a.services, { plan: 'Pro', prepaidMicro: 10 * AUD })));
  const team = await makeTeam(a.services, users[0]!, { balanceMicro: 20 * AUD });
  const expiring = await Promise.all(users.map((u) => makeKey(a.services, u, { expiresAt: new Date(boundary.getTime() - 1_800_000) })));
  const spenders = await Promise.all(users.map((u) => makeKey(a.services, u)));
  const teamKey = await makeKey(a.services, users[0]!, { teamId: team.id });
  for (const { key } of spenders) await spend(a.services, key.id, AUD);
  // Admitted by a third instance that then dies: nobody renews these holds.
  const dying = jobInstance(db, clock);
  const stale = [await admit(dying.services, spenders[0]!.key.id, AUD), await admit(dying.services, spenders[1]!.key.id, AUD), await admit(dying.services, teamKey.key.id, AUD)];
  await dying.services.metering.shutdown();
  await db('teams').where({ id: team.id }).increment('balance_micro', 1000);
  await db('personal_balances').where({ user_id: users[2]!.user.id }).increment('prepaid_micro', 7);
  await db('api_keys').where({ id: spenders[2]!.key.id }).increment('spend_micro', 3);
  // Past the expiries (boundary − 30 min), the hold deadlines (45 s after admission) and the month boundary.
  clock.set(new Date(boundary.getTime() + 1_800_000));
  return { users, team, expiring: expiring.map((k) => k.key.id), stale: stale.map((h) => h.requestId), corrupted: [team.id, users[2]!.user.id, spenders[2]!.key.id] };
}

type Work = Awaited<ReturnType<typeof prepareWork>>;

async function expectEachChangeOnce(db: Db, work: Work, ledgerBefore: number, boundary: Date) {
  for (const id of work.expiring) {
    expect(await countRows(db, 'audit_events', { action: 'key.expire', target_id: id })).toBe(1);
    expect((await db('api_keys').where({ id }).first()).status).toBe('expired');
  }
  for (const requestId of work.stale) {
    const events = await db('usage_events').where({ request_id: requestId });
    expect(events).toHaveLength(1);
    expect(events[0].outcome).toBe('abandoned');
  }
  expect(await countRows(db, 'holds')).toBe(0);
  for (const id of work.corrupted) expect(await countRows(db, 'audit_events', { action: 'reconcile.correct', target_id: id })).toBe(1);
  for (const { user } of work.users) {
    expect(await db('period_statements').where({ user_id: user.id }).where('period_end', boundary)).toHaveLength(1);
  }
  // No job writes money: abandoned requests cost 0, corrections fix caches, roll-over resets counters.
  expect(await countRows(db, 'ledger_entries')).toBe(ledgerBefore);
}

describe(`jobs on two instances at the same moment (${dialect})`, () => {
  let t: TestDb;
  let clock: ManualClock;
  let a: JobInstance;
  let b: JobInstance;
  beforeAll(async () => {
    t = await createTestDb();
    clock = new ManualClock('2026-10-01T00:00:00.000Z');
    a = jobInstance(t.db, clock);
    b = jobInstance(t.another(), clock);
  });
  // Independently of the jobs' own accounting: every cache equals its ledger sum after every test.
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t.destroy());

  it('runs every job on both instances at once and makes each change exactly once', async () => {
    const boundary = new Date('2026-10-31T13:00:00.000Z'); // Nov 1, midnight in Sydney
    const work = await prepareWork(t.db, a, clock, boundary);
    const ledgerBefore = await countRows(t.db, 'ledger_entries');

    const runs = await Promise.all(JOB_NAMES.flatMap((name) => [a.run(name), b.run(name)]));
    for (const name of JOB_NAMES) {
      const pair = runs.filter((r) => r.job === name);
      expect(pair.map((r) => r.result), name).not.toContain('failed');
      expect(pair.map((r) => r.result), name).toContain('ok');
    }
    await expectEachChangeOnce(t.db, work, ledgerBefore, boundary);

    // And again, one after the other: nothing left to do.
    for (const name of JOB_NAMES) for (const inst of [a, b]) expect((await inst.run(name)).result).toBe('ok');
    await expectEachChangeOnce(t.db, work, ledgerBefore, boundary);
    const status = await listJobStatus(t.db, clock.now());
    expect(status.map((s) => [s.name, s.running, s.lastOk])).toEqual(JOB_NAMES.map((n) => [n, false, true]).sort());
  });

  it('skips a job while another instance holds its lease, and takes over when a crashed holder’s lease runs out', async () => {
    const now = clock.now();
    await t.db('job_locks').insert({ name: 'reconcile' }).onConflict('name').ignore();
    await t.db('job_locks').where({ name: 'reconcile' }).update({ owner: 'crashed-host:1:abc', locked_until: new Date(now.getTime() + 60_000) });
    expect(await b.run('reconcile')).toMatchObject({ result: 'skipped', summary: 'another instance holds the lease' });
    expect((await listJobStatus(t.db, now)).find((s) => s.name === 'reconcile')?.running).toBe(true);
    clock.advance(60_000);
    expect((await b.run('reconcile')).result).toBe('ok');
    expect((await t.db('job_locks').where({ name: 'reconcile' }).first()).owner).toBeNull();
  });

  // Past the lease: the per-row guards alone must keep every change single when two instances really overlap.
  describe.runIf(onMysql)('without the lease', () => {
    it('two instances running every job’s work concurrently still change each thing once', async () => {
      const boundary = new Date('2026-11-30T13:00:00.000Z'); // Dec 1, midnight in Sydney
      const work = await prepareWork(t.db, a, clock, boundary);
      const ledgerBefore = await countRows(t.db, 'ledger_entries');
      await Promise.all(
        [a, b].flatMap((inst) => [
          inst.services.keyExpiry.expireDueKeys(systemActor),
          releaseStaleHolds(inst.services.metering).then((r) => expect(r.failed).toEqual([])),
          inst.services.reconcile.reconcile(systemActor),
          inst.services.rollover.rollDuePeriods(),
        ]),
      );
      await expectEachChangeOnce(t.db, work, ledgerBefore, boundary);
    });
  });
});
