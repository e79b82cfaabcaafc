import type { Tx } from '../../db/knex.js';
import { toDate } from '../../db/rows.js';
import { toMicro, type Micro } from '../money.js';
import type { Period } from './period.js';

/**
 * A balance row's per-period counters as of the current period. Until the row is rolled over, the stored included
 * and overage counters belong to an earlier period, so for the current one they are zero. The one statement of that
 * rule: balances, admission, settlement and the roll-over itself read counters through it.
 */
export function countersInPeriod(row: Record<string, unknown>, current: Period): { includedUsedMicro: Micro; overageUsedMicro: Micro; stale: boolean } {
  return periodCounters(
    { periodStart: toDate(row.period_start), includedUsedMicro: toMicro(row.included_used_micro), overageUsedMicro: toMicro(row.overage_used_micro) },
    current,
  );
}

/** countersInPeriod on a typed balance (the metering planner's rows). */
export function periodCounters(
  b: { periodStart: Date; includedUsedMicro: Micro; overageUsedMicro: Micro },
  current: Period,
): { includedUsedMicro: Micro; overageUsedMicro: Micro; stale: boolean } {
  if (b.periodStart.getTime() < current.start.getTime()) return { includedUsedMicro: 0, overageUsedMicro: 0, stale: true };
  return { includedUsedMicro: b.includedUsedMicro, overageUsedMicro: b.overageUsedMicro, stale: false };
}

/**
 * Rolls a user's locked balance row into the current billing period when a month boundary has passed: writes the
 * statement of the period that ended (once: unique per user and period) and resets the included and overage
 * counters. Called by metering when a batch would charge a payer still in an ended period (so a request just after
 * midnight is charged to the new month even before the job runs; admission only reads the counters through
 * periodCounters and never rolls over) and by the roll-over job. The caller holds the row lock, so this happens
 * exactly once.
 */
export async function rollPersonalPeriodIfDue(
  tx: Tx,
  row: Record<string, unknown>,
  current: Period,
  now: Date,
): Promise<{ includedUsedMicro: Micro; overageUsedMicro: Micro; rolled: boolean }> {
  const counters = countersInPeriod(row, current);
  if (!counters.stale) return { ...counters, rolled: false };
  const storedStart = toDate(row.period_start);
  const userId = row.user_id as string;
  const spend = await tx('usage_events')
    .where({ user_id: userId })
    .whereNull('team_id')
    .where('created_at', '>=', storedStart)
    .where('created_at', '<', current.start)
    .sum({ total: 'cost_micro' })
    .first();
  const exists = await tx('period_statements').where({ user_id: userId, period_start: storedStart }).first('id');
  if (!exists) {
    await tx('period_statements').insert({
      user_id: userId,
      period_start: storedStart,
      // The stored period may be several months old (an idle user): the statement covers up to now's period.
      period_end: current.start,
      plan_id: row.plan_id as string,
      included_micro: toMicro(row.included_micro),
      included_used_micro: toMicro(row.included_used_micro),
      overage_used_micro: toMicro(row.overage_used_micro),
      prepaid_end_micro: toMicro(row.prepaid_micro),
      spend_micro: toMicro(spend?.total),
      created_at: now,
    });
  }
  await tx('personal_balances').where({ user_id: userId }).update({
    included_used_micro: 0,
    // A new month: the included-usage alerts fire afresh.
    alert_fired_pct: 0,
    overage_used_micro: 0,
    period_start: current.start,
    updated_at: now,
  });
  return { includedUsedMicro: 0, overageUsedMicro: 0, rolled: true };
}
