import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/knex.js';
import { ManualClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { dialect, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { admit, countRows, jobFixture, jobInstance, metricValue, settle, spend, type JobInstance } from '../support/jobs.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const AUD = 1_000_000;

async function ledgerSum(db: Db, where: Record<string, unknown>): Promise<number> {
  return toMicro((await db('ledger_entries').where(where).sum({ s: 'amount_micro' }).first())?.s);
}

interface CorrectionAudit {
  target_type: string;
  target_id: string;
  actor_kind: string;
  details: { corrections: Array<{ field: string; cached: number; actual: number; difference: number }>; status?: unknown };
}

async function reconcileAudits(db: Db, targetId?: string): Promise<CorrectionAudit[]> {
  const rows = await db('audit_events').where({ action: 'reconcile.correct', ...(targetId && { target_id: targetId }) }).orderBy('id');
  return rows.map((r: Record<string, unknown>) => ({ ...r, details: JSON.parse(r.details as string) }) as CorrectionAudit);
}

describe(`reconcile job (${dialect})`, () => {
  let t: TestDb;
  let clock: ManualClock;
  let a: JobInstance;
  beforeAll(async () => ({ t, clock, a } = await jobFixture()));
  // Independently of the jobs' own accounting: every cache equals its ledger sum after every test.
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t.destroy());

  it('finds nothing to correct after ordinary spending, top-ups and an open hold', async () => {
    const owner = await makeUser(a.services, { plan: 'Pro', prepaidMicro: 20 * AUD });
    const team = await makeTeam(a.services, owner, { balanceMicro: 30 * AUD });
    const personal = await makeKey(a.services, owner);
    const teamKey = await makeKey(a.services, owner, { teamId: team.id });
    for (const cost of [1_234_567, 60 * AUD, 3]) await spend(a.services, personal.key.id, cost);
    await spend(a.services, teamKey.key.id, 2 * AUD);
    await admit(a.services, teamKey.key.id, AUD);
    const run = await a.run('reconcile');
    expect(run).toMatchObject({ result: 'ok', summary: '0 drifts corrected, 0 need attention (0 rows re-checked)' });
    expect(await reconcileAudits(t.db)).toHaveLength(0);
  });

  it('corrects corrupted cached counters to the ledger, with an audit event, a log line and a metric — once', async () => {
    const owner = await makeUser(a.services, { plan: 'Pro', prepaidMicro: 10 * AUD });
    const team = await makeTeam(a.services, owner, { balanceMicro: 50 * AUD });
    const personal = await makeKey(a.services, owner, { spendLimitMicro: 100 * AUD });
    const teamKey = await makeKey(a.services, owner, { teamId: team.id, spendLimitMicro: 10 * AUD });
    await spend(a.services, personal.key.id, 7 * AUD); // 5 from included (Free: 5, Pro: 50) → all included on Pro
    await spend(a.services, teamKey.key.id, 4 * AUD);
    const before = {
      team: await t.db('teams').where({ id: team.id }).first(),
      balance: await t.db('personal_balances').where({ user_id: owner.user.id }).first(),
    };

    // Corrupt every cached counter directly, as a bug or a manual UPDATE would.
    await t.db('teams').where({ id: team.id }).update({ balance_micro: 999 * AUD, held_micro: 5 });
    await t.db('api_keys').where({ id: teamKey.key.id }).update({ spend_micro: 10 * AUD, status: 'limit_reached', held_micro: 7 });
    await t.db('api_keys').where({ id: personal.key.id }).update({ request_count: 9 });
    await t.db('personal_balances').where({ user_id: owner.user.id }).update({
      prepaid_micro: 1, included_used_micro: 0, overage_used_micro: 3 * AUD, held_micro: 11,
    });

    const run = await a.run('reconcile');
    expect(run).toMatchObject({ result: 'ok', summary: '9 drifts corrected, 0 need attention (4 rows re-checked)' });

    const teamRow = await t.db('teams').where({ id: team.id }).first();
    expect(toMicro(teamRow.balance_micro)).toBe(46 * AUD);
    expect(toMicro(teamRow.balance_micro)).toBe(await ledgerSum(t.db, { team_id: team.id, account: 'team' }));
    expect(toMicro(teamRow.balance_micro)).toBe(toMicro(before.team.balance_micro));
    expect(toMicro(teamRow.held_micro)).toBe(0);

    const teamKeyRow = await t.db('api_keys').where({ id: teamKey.key.id }).first();
    expect(toMicro(teamKeyRow.spend_micro)).toBe(4 * AUD);
    // Its limit status was judged on the wrong spend: judged again on the true one.
    expect(teamKeyRow.status).toBe('active');
    expect(toMicro(teamKeyRow.held_micro)).toBe(0);
    expect(Number((await t.db('api_keys').where({ id: personal.key.id }).first()).request_count)).toBe(1);

    const balance = await t.db('personal_balances').where({ user_id: owner.user.id }).first();
    for (const column of ['prepaid_micro', 'included_used_micro', 'overage_used_micro'])
      expect(toMicro(balance[column]), column).toBe(toMicro(before.balance[column]));
    expect(toMicro(balance.included_used_micro)).toBe(7 * AUD);
    expect(toMicro(balance.held_micro)).toBe(0);

    const audits = await reconcileAudits(t.db);
    expect(audits.map((e) => `${e.target_type}:${e.target_id}`).sort()).toEqual(
      [`key:${personal.key.id}`, `key:${teamKey.key.id}`, `team:${team.id}`, `user:${owner.user.id}`].sort(),
    );
    const teamAudit = audits.find((e) => e.target_id === team.id)!;
    expect(teamAudit.actor_kind).toBe('system');
    expect(teamAudit.details.corrections).toContainEqual({ field: 'balance_micro', cached: 999 * AUD, actual: 46 * AUD, difference: -953 * AUD });
    expect(audits.find((e) => e.target_id === teamKey.key.id)!.details.status).toEqual({ from: 'limit_reached', to: 'active' });

    expect(await metricValue(a.metrics, 'modelbridge_reconciliation_drift_total', { kind: 'team_balance' })).toBe(1);
    expect(await metricValue(a.metrics, 'modelbridge_reconciliation_drift_total', { kind: 'key_spend' })).toBe(1);
    expect(await metricValue(a.metrics, 'modelbridge_reconciliation_drift_total', { kind: 'personal_prepaid' })).toBe(1);
    expect(a.logs.filter((l) => l.includes('reconciliation drift corrected'))).toHaveLength(9);
    expect(a.logs.some((l) => l.includes(team.id) && l.includes('"kind":"team_balance"'))).toBe(true);

    // Idempotent: nothing left, no new audit event, no new ledger entry (corrections never touch the ledger).
    const ledgerCount = await countRows(t.db, 'ledger_entries');
    expect((await a.run('reconcile')).summary).toBe('0 drifts corrected, 0 need attention (0 rows re-checked)');
    expect(await reconcileAudits(t.db)).toHaveLength(4);
    expect(await countRows(t.db, 'ledger_entries')).toBe(ledgerCount);
  });

  it('reports, without touching, usage events and ledger debits that disagree', async () => {
    const owner = await makeUser(a.services, { prepaidMicro: 10 * AUD });
    const { key } = await makeKey(a.services, owner);
    await spend(a.services, key.id, AUD);
    // A stray debit for the key, with a matching cached prepaid balance: only the key's two records disagree.
    await t.db('ledger_entries').insert({
      account: 'user_prepaid', user_id: owner.user.id, key_id: key.id, amount_micro: -5, kind: 'usage', created_at: clock.now(),
    });
    await t.db('personal_balances').where({ user_id: owner.user.id }).decrement('prepaid_micro', 5);

    const run = await a.run('reconcile');
    expect(run.summary).toBe('0 drifts corrected, 1 need attention (1 rows re-checked)');
    expect(toMicro((await t.db('api_keys').where({ id: key.id }).first()).spend_micro)).toBe(AUD);
    expect(await reconcileAudits(t.db, key.id)).toHaveLength(0);
    expect(await metricValue(a.metrics, 'modelbridge_reconciliation_drift_total', { kind: 'key_ledger_mismatch' })).toBe(1);
    expect(a.logs.some((l) => l.includes('usage events and ledger disagree') && l.includes('"level":50'))).toBe(true);
    // Undo, so the other tests in this file see a consistent ledger.
    await t.db('ledger_entries').where({ key_id: key.id, amount_micro: -5 }).delete();
    await t.db('personal_balances').where({ user_id: owner.user.id }).increment('prepaid_micro', 5);
  });

  // Concurrency: MySQL, where settlements really run in parallel under row locks.
  describe.runIf(onMysql)('while a team spends concurrently', () => {
    it('never corrects a counter that was right, corrects exactly the corruption, and leaves balance = credits − debits', async () => {
      const owner = await makeUser(a.services);
      const members = await Promise.all([1, 2, 3].map(() => makeUser(a.services)));
      const team = await makeTeam(a.services, owner, { balanceMicro: 1000 * AUD, members: members.map((m) => [m, 'member'] as const) });
      const keys = await Promise.all([owner, ...members].map((m) => makeKey(a.services, m, { teamId: team.id })));
      // A second instance reconciles too, on its own pool, as another app process would.
      const b = jobInstance(t.another(), clock);

      let spending = true;
      const reconcilers = [a, b].map(async (inst) => {
        let runs = 0;
        while (spending) {
          // Straight to the service, past the lease: both instances reconcile truly at the same time.
          const { drifts } = await inst.services.reconcile.reconcile({ userId: 'system', role: 'admin', via: 'system' });
          for (const d of drifts) inst.metrics.reconciliationDrift.inc({ kind: d.kind });
          runs++;
        }
        return runs;
      });
      let expectedCost = 0;
      const workers = Array.from({ length: 8 }, async (_, w) => {
        const key = keys[w % keys.length]!.key;
        for (let i = 0; i < 25; i++) {
          const cost = 1 + ((w * 7919 + i * 104_729) % 2_000_000);
          const hold = await admit(a.services, key.id, 2_000_000);
          await settle(a.services, hold, cost);
          expectedCost += cost;
          if (w === 0 && i === 12) {
            // Corruption in the middle of the traffic: relative updates, so the drift is exact whatever else commits.
            await t.db('teams').where({ id: team.id }).increment('balance_micro', 777);
            await t.db('api_keys').where({ id: key.id }).increment('spend_micro', 555);
          }
        }
      });
      await Promise.all(workers);
      spending = false;
      const runs = await Promise.all(reconcilers);
      expect(runs[0]! + runs[1]!).toBeGreaterThan(2);
      await a.services.reconcile.reconcile({ userId: 'system', role: 'admin', via: 'system' });

      const teamCredits = toMicro((await t.db('ledger_entries').where({ team_id: team.id }).where('amount_micro', '>', 0).sum({ s: 'amount_micro' }).first())?.s);
      const teamDebits = toMicro((await t.db('ledger_entries').where({ team_id: team.id }).where('amount_micro', '<', 0).sum({ s: 'amount_micro' }).first())?.s);
      const row = await t.db('teams').where({ id: team.id }).first();
      expect(teamCredits).toBe(1000 * AUD);
      expect(-teamDebits).toBe(expectedCost);
      expect(toMicro(row.balance_micro)).toBe(teamCredits + teamDebits);
      expect(toMicro(row.held_micro)).toBe(0);
      for (const { key } of keys) {
        const k = await t.db('api_keys').where({ id: key.id }).first();
        const events = toMicro((await t.db('usage_events').where({ key_id: key.id }).sum({ s: 'cost_micro' }).first())?.s);
        expect(toMicro(k.spend_micro)).toBe(events);
      }

      // Exactly the two corruptions were corrected, each once, by exactly their amount — nothing else, ever.
      const audits = (await reconcileAudits(t.db)).filter((e) => e.target_id === team.id || keys.some((k) => k.key.id === e.target_id));
      const corrections = audits.flatMap((e) => e.details.corrections.map((c) => `${e.target_type}.${c.field}:${c.difference}`));
      expect(corrections.sort()).toEqual(['key.spend_micro:-555', 'team.balance_micro:-777']);

      const ledgerCount = await countRows(t.db, 'ledger_entries');
      expect((await a.run('reconcile')).summary).toBe('0 drifts corrected, 0 need attention (0 rows re-checked)');
      expect(await countRows(t.db, 'ledger_entries')).toBe(ledgerCount);
    });
  });
});
