import type { Db } from '../../db/knex.js';
import { toDate, toDateOrNull, toInt } from '../../db/rows.js';
import type { Actor } from '../actor.js';
import type { Clock } from '../clock.js';
import { notFound } from '../errors.js';
import { limitPeriodAt, memberRowId } from '../keys/controls.js';
import type { KeysService } from '../keys/keys.service.js';
import { formatAud, toMicro, type Micro } from '../money.js';
import { teamRoleOf } from '../teams/membership.js';
import { teamPermissions } from '../teams/roles.js';
import { LIFETIME_PERIOD_START } from './metering/alert-crossings.js';
import type { AlertEventType } from './metering/types.js';
import { billingPeriodAt } from './period.js';

/** A threshold crossed, as recorded by metering (alert_firings): what the portal lists and its notices say. */
export interface AlertFired {
  eventType: AlertEventType;
  threshold: number;
  spentMicro: Micro;
  limitMicro: Micro;
  keyId: string | null;
  userId: string | null;
  periodStart: Date;
  at: Date;
  /** For people: "This key has used 80 % of its A$10.00 monthly limit." */
  message: string;
}

export interface Alerts {
  /** The highest crossing of the current period, per thing watched (at most one per limit). */
  notices: AlertFired[];
  /** The latest crossings, newest first. */
  recent: AlertFired[];
}

export interface AlertsDeps {
  db: Db;
  clock: Clock;
  timeZone: string;
  keys: KeysService;
}

const RECENT = 20;
const PERIOD_WORD = { daily: 'daily', weekly: 'weekly', monthly: 'monthly' } as const;

/**
 * Reads the crossings metering recorded (docs/limits.md, "Alerts"): for a key, for the caller's personal balance, for
 * a team (its balance, and the member budgets the caller may see). Who may read follows who may see the thing.
 */
export class AlertsService {
  constructor(private readonly deps: AlertsDeps) {}

  async forKey(keyId: string, actor: Actor): Promise<Alerts> {
    const key = await this.deps.keys.get(keyId, actor);
    const now = this.deps.clock.now();
    const since = key.limitReset ? limitPeriodAt(key.limitReset, now, this.deps.timeZone).start : LIFETIME_PERIOD_START;
    const which = key.limitReset ? `${PERIOD_WORD[key.limitReset]} limit` : 'spending limit';
    const rows = await this.rows((q) => q.where({ scope_id: key.id }).whereIn('event_type', ['key.limit_threshold', 'key.limit_reached']));
    return this.alerts(rows, since, (r) => r.eventType === 'key.limit_reached'
      ? `This key has reached its ${formatAud(r.limitMicro)} ${which}.`
      : `This key has used ${r.threshold} % of its ${formatAud(r.limitMicro)} ${which}.`);
  }

  async forUser(actor: Actor): Promise<Alerts> {
    const since = billingPeriodAt(this.deps.clock.now(), this.deps.timeZone).start;
    const rows = await this.rows((q) => q.where({ scope_id: actor.userId, event_type: 'balance.threshold' }));
    return this.alerts(rows, since, (r) => `You have used ${r.threshold} % of your plan’s ${formatAud(r.limitMicro)} included usage this month.`);
  }

  /** The team's balance crossings since its last top-up, and member budgets: every member's for managers, else one's own. */
  async forTeam(teamId: string, actor: Actor): Promise<Alerts> {
    const role = await teamRoleOf(this.deps.db, teamId, actor.userId);
    if (!role && actor.role !== 'admin') throw notFound('Team');
    const team = await this.deps.db('teams').where({ id: teamId }).first('balance_alert_since');
    if (!team) throw notFound('Team');
    const month = billingPeriodAt(this.deps.clock.now(), this.deps.timeZone).start;
    const allMembers = actor.role === 'admin' || (role !== null && teamPermissions.manageMembers(role));
    const balance = await this.rows((q) => q.where({ scope_id: teamId, event_type: 'team.balance_threshold' }));
    const budgets = await this.rows((q) => {
      q.where({ team_id: teamId, event_type: 'member.budget_threshold' });
      if (!allMembers) q.where({ scope_id: memberRowId(teamId, actor.userId) });
    });
    const sinceTopUp = toDateOrNull(team.balance_alert_since) ?? LIFETIME_PERIOD_START;
    const b = this.alerts(balance, sinceTopUp, (r) => `The team has spent ${r.threshold} % of its balance at the last top-up (${formatAud(r.limitMicro)}).`);
    const m = this.alerts(budgets, month, (r) => r.userId === actor.userId
      ? `You have used ${r.threshold} % of your ${formatAud(r.limitMicro)} monthly member budget.`
      : `A member has used ${r.threshold} % of their ${formatAud(r.limitMicro)} monthly member budget.`, (r) => r.userId ?? '');
    return { notices: [...b.notices, ...m.notices], recent: [...b.recent, ...m.recent].sort((x, y) => y.at.getTime() - x.at.getTime()).slice(0, RECENT) };
  }

  private async rows(where: (q: ReturnType<Db>) => void): Promise<Array<Omit<AlertFired, 'message'>>> {
    const q = this.deps.db('alert_firings');
    where(q);
    const rows = await q.orderBy('id', 'desc').limit(100);
    return rows.map((r: Record<string, unknown>) => ({
      eventType: r.event_type as AlertEventType, threshold: toInt(r.threshold), spentMicro: toMicro(r.spent_micro), limitMicro: toMicro(r.limit_micro),
      keyId: (r.key_id as string | null) ?? null, userId: (r.user_id as string | null) ?? null, periodStart: toDate(r.period_start), at: toDate(r.created_at),
    }));
  }

  /** Messages for the rows, and the notices: the highest crossing of the current period for each `group`. */
  private alerts(rows: Array<Omit<AlertFired, 'message'>>, since: Date, say: (r: Omit<AlertFired, 'message'>) => string, group: (r: Omit<AlertFired, 'message'>) => string = () => ''): Alerts {
    const all = rows.map((r) => ({ ...r, message: say(r) }));
    const highest = new Map<string, AlertFired>();
    for (const r of all) {
      if (r.periodStart.getTime() < since.getTime()) continue;
      const prior = highest.get(group(r));
      const rank = (a: AlertFired) => a.threshold * 2 + (a.eventType === 'key.limit_reached' ? 1 : 0);
      if (!prior || rank(r) > rank(prior)) highest.set(group(r), r);
    }
    return { notices: [...highest.values()], recent: all.slice(0, RECENT) };
  }
}
