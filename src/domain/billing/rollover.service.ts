import type { Db, Tx } from '../../db/knex.js';
import { withTransaction } from '../../db/transaction.js';
import type { Clock } from '../clock.js';
import { billingPeriodAt, type Period } from './period.js';
import { rollPersonalPeriodIfDue } from './rollover.js';

export interface RolloverDeps {
  db: Db;
  clock: Clock;
  timeZone: string;
}

export interface RolloverResult {
  period: Period;
  /** Users whose counters this run reset (a statement was written for each, unless one already existed). */
  rolled: string[];
}

const BATCH = 500;

/**
 * The hourly roll-over: every personal balance still in an earlier billing period moves into the current one.
 * Metering already rolls a row lazily when a batch would charge its user (admission only reads the counters as
 * zero for the new period and never rolls over), so this job is what rolls idle users (their statement gets written, their dashboard shows the new month) — the rule itself lives once, in
 * rollPersonalPeriodIfDue, and runs under the balance row lock, so it happens once per user and month however many
 * instances and requests race for it.
 */
export class RolloverService {
  constructor(private readonly deps: RolloverDeps) {}

  async rollDuePeriods(): Promise<RolloverResult> {
    const now = this.deps.clock.now();
    const period = billingPeriodAt(now, this.deps.timeZone);
    const rolled: string[] = [];
    let after = '';
    for (;;) {
      const due = (await this.deps.db('personal_balances')
        .where('period_start', '<', period.start)
        .where('user_id', '>', after)
        .orderBy('user_id')
        .limit(BATCH)
        .pluck('user_id')) as string[];
      for (const userId of due) {
        const done = await withTransaction(this.deps.db, async (tx) => {
          const row = await lockPersonalBalanceWithPlan(tx, userId);
          return row ? (await rollPersonalPeriodIfDue(tx, row, period, now)).rolled : false;
        });
        if (done) rolled.push(userId);
      }
      if (due.length < BATCH) return { period, rolled };
      after = due[due.length - 1]!;
    }
  }
}

/**
 * Locks a user's balance row and reads their plan beside it — the row shape rollPersonalPeriodIfDue expects. Only the
 * balance row is locked: a FOR UPDATE over the join would also lock the shared plan row and serialise every user of
 * the plan.
 */
export async function lockPersonalBalanceWithPlan(tx: Tx, userId: string): Promise<Record<string, unknown> | null> {
  const balance = await tx('personal_balances').where({ user_id: userId }).forUpdate().first();
  if (!balance) return null;
  const plan = await tx('users as u')
    .join('plans as p', 'p.id', 'u.plan_id')
    .where('u.id', userId)
    .first('u.plan_id', 'p.included_micro', 'p.overage_allowed', 'p.overage_cap_micro');
  return plan ? { ...balance, ...plan } : null;
}
