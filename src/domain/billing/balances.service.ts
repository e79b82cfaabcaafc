import type { Db, Queryable } from '../../db/knex.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, forbidden, notFound } from '../errors.js';
import { formatAud, MAX_AMOUNT_MICRO, toMicro, type Micro } from '../money.js';
import { planFromRow, type Plan } from '../accounts/plans.js';
import { parseThresholds, storeThresholds, validateAlertThresholds } from './alerts.js';
import { appendLedger } from './ledger.js';
import { billingPeriodAt } from './period.js';
import { countersInPeriod } from './rollover.js';

/**
 * The largest prepaid or team balance a top-up may produce: 8 billion AUD in micro-AUD, below 2^53 (about 9.007e15)
 * so a balance stays an exact JavaScript integer on every read, with room for the one request that may overrun it.
 */
export const MAX_BALANCE_MICRO: Micro = 8 * MAX_AMOUNT_MICRO;

export interface PersonalBalance {
  plan: Plan;
  includedMicro: Micro;
  includedUsedMicro: Micro;
  prepaidMicro: Micro;
  overageUsedMicro: Micro;
  overageCapMicro: Micro | null;
  heldMicro: Micro;
  periodStart: Date;
  periodEnd: Date;
  /** The user's alert thresholds on included usage used this month, in percent (null: the defaults). */
  alertThresholds: number[] | null;
}

export interface BalancesDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  timeZone: string;
}

export class BalancesService {
  constructor(private readonly deps: BalancesDeps) {}

  async personal(userId: string, q: Queryable = this.deps.db): Promise<PersonalBalance> {
    const row = await q('personal_balances as b')
      .join('users as u', 'u.id', 'b.user_id')
      .join('plans as p', 'p.id', 'u.plan_id')
      .where('b.user_id', userId)
      .first('b.*', 'p.id', 'p.name', 'p.included_micro', 'p.overage_allowed', 'p.overage_cap_micro', 'p.is_default', 'u.alert_thresholds');
    if (!row) throw notFound('Balance');
    const plan = planFromRow(row);
    const period = billingPeriodAt(this.deps.clock.now(), this.deps.timeZone);
    const counters = countersInPeriod(row, period);
    return {
      plan,
      includedMicro: plan.includedMicro,
      includedUsedMicro: counters.includedUsedMicro,
      prepaidMicro: toMicro(row.prepaid_micro),
      overageUsedMicro: counters.overageUsedMicro,
      overageCapMicro: plan.overageAllowed ? plan.overageCapMicro : 0,
      heldMicro: toMicro(row.held_micro),
      periodStart: period.start,
      periodEnd: period.end,
      alertThresholds: parseThresholds(row.alert_thresholds),
    };
  }

  /** The caller's own alert thresholds on their plan's included usage (null: the defaults; [] none). */
  async setAlertThresholds(thresholds: number[] | null, actor: Actor): Promise<number[] | null> {
    const list = validateAlertThresholds(thresholds);
    await withTransaction(this.deps.db, async (tx) => {
      await tx('users').where({ id: actor.userId }).update({ alert_thresholds: storeThresholds(list) });
      await this.deps.audit.record(tx, actor, 'user.alert_thresholds', { type: 'user', id: actor.userId }, { alertThresholds: list });
    });
    return list;
  }

  /** Records a top-up (payments happen outside ModelBridge): a ledger credit and the cached balance, together. */
  async credit(target: { userId: string } | { teamId: string }, amountMicro: Micro, note: string | null, actor: Actor): Promise<Micro> {
    if (actor.role !== 'admin') throw forbidden('Only installation admins record top-ups.');
    if (!Number.isSafeInteger(amountMicro) || amountMicro <= 0 || amountMicro > MAX_AMOUNT_MICRO)
      throw badInput('A top-up is a positive AUD amount.');
    const now = this.deps.clock.now();
    // One conditional UPDATE: the balance grows only while it stays within MAX_BALANCE_MICRO, so concurrent top-ups
    // cannot pass it either.
    const headroom = MAX_BALANCE_MICRO - amountMicro;
    const tooMuch = () => badInput(`That top-up would take the balance past the maximum of ${formatAud(MAX_BALANCE_MICRO)}.`);
    return withTransaction(this.deps.db, async (tx) => {
      if ('userId' in target) {
        const changed = await tx('personal_balances').where({ user_id: target.userId }).where('prepaid_micro', '<=', headroom).increment('prepaid_micro', amountMicro);
        if (!changed) throw (await tx('personal_balances').where({ user_id: target.userId }).first('user_id')) ? tooMuch() : notFound('User');
        await appendLedger(tx, [{ account: 'user_prepaid', userId: target.userId, amountMicro, kind: 'topup', note, createdBy: actor.userId }], now);
        await this.deps.audit.record(tx, actor, 'balance.credit', { type: 'user', id: target.userId }, { amountMicro, note });
        return toMicro((await tx('personal_balances').where({ user_id: target.userId }).first('prepaid_micro'))!.prepaid_micro);
      }
      const changed = await tx('teams').where({ id: target.teamId }).where('balance_micro', '<=', headroom).increment('balance_micro', amountMicro);
      if (!changed) throw (await tx('teams').where({ id: target.teamId }).first('id')) ? tooMuch() : notFound('Team');
      await appendLedger(tx, [{ account: 'team', teamId: target.teamId, amountMicro, kind: 'topup', note, createdBy: actor.userId }], now);
      await this.deps.audit.record(tx, actor, 'balance.credit', { type: 'team', id: target.teamId }, { amountMicro, note });
      const balance = toMicro((await tx('teams').where({ id: target.teamId }).first('balance_micro'))!.balance_micro);
      // The team's balance alerts are shares of the balance right after its last top-up: they start afresh.
      await tx('teams').where({ id: target.teamId }).update({ balance_alert_base_micro: balance, balance_alert_since: now, balance_alert_fired_pct: 0 });
      return balance;
    });
  }
}
