import type { Db, Queryable } from '../../db/knex.js';
import { toDateOrNull } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import { parseThresholds, storeThresholds, validateAlertThresholds } from '../billing/alerts.js';
import { billingPeriodAt } from '../billing/period.js';
import type { Clock } from '../clock.js';
import { badInput, notFound } from '../errors.js';
import { parseModelList, storeModelList } from '../keys/controls.js';
import { resolveModelList, validateRateLimit, type ResolveModel } from '../keys/key-settings.js';
import { MAX_AMOUNT_MICRO, toMicro, toMicroOrNull, type Micro } from '../money.js';
import { requireTeamManager, teamRoleOf } from './membership.js';

/** A team's controls over its keys (docs/limits.md): the list its keys cannot widen, and rate-limit defaults. */
export interface TeamControls {
  allowedModels: string[] | null;
  defaultRpmLimit: number | null;
  defaultTpmLimit: number | null;
  defaultMaxParallel: number | null;
  /** Alert thresholds on member budgets, in percent (null: the defaults 50, 80, 100). */
  alertThresholds: number[] | null;
}

/** A member's monthly budget on what their team keys spend (null: none), and what they spent this month. */
export interface MemberBudget {
  userId: string;
  budgetMicro: Micro | null;
  spentMicro: Micro;
  heldMicro: Micro;
  periodEnd: Date;
}

export interface TeamControlsDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  timeZone: string;
  resolveModel: ResolveModel;
}

/**
 * Team-wide key controls and member budgets, set by the team's owners and admins; every member may read them (a
 * member sees the budget they are held to). Metering reads them under the locks of each admission.
 */
export class TeamControlsService {
  constructor(private readonly deps: TeamControlsDeps) {}

  async get(teamId: string, actor: Actor, q: Queryable = this.deps.db): Promise<TeamControls & { members: MemberBudget[] }> {
    if (!(await teamRoleOf(q, teamId, actor.userId)) && actor.role !== 'admin') throw notFound('Team');
    const row = await q('teams').where({ id: teamId }).first();
    if (!row) throw notFound('Team');
    const period = billingPeriodAt(this.deps.clock.now(), this.deps.timeZone);
    const members = await q('team_members').where({ team_id: teamId }).orderBy('user_id')
      .select('user_id', 'budget_micro', 'budget_spend_micro', 'budget_held_micro', 'budget_period_start');
    return {
      ...controlsOf(row),
      members: members.map((m: Record<string, unknown>) => {
        const start = toDateOrNull(m.budget_period_start);
        return {
          userId: m.user_id as string, budgetMicro: toMicroOrNull(m.budget_micro),
          // A counter of an ended month counts as 0 until the member's next request rolls it over.
          spentMicro: start && start.getTime() >= period.start.getTime() ? toMicro(m.budget_spend_micro) : 0,
          heldMicro: toMicro(m.budget_held_micro), periodEnd: period.end,
        };
      }),
    };
  }

  /** Absent fields stay as they are; null removes. */
  async setControls(teamId: string, changes: Partial<TeamControls>, actor: Actor): Promise<TeamControls> {
    const patch: Record<string, unknown> = {};
    if (changes.allowedModels !== undefined) patch.allowed_models = storeModelList(await resolveModelList(changes.allowedModels, this.deps.resolveModel));
    if (changes.defaultRpmLimit !== undefined) patch.default_rpm_limit = validateRateLimit('defaultRpmLimit', changes.defaultRpmLimit);
    if (changes.defaultTpmLimit !== undefined) patch.default_tpm_limit = validateRateLimit('defaultTpmLimit', changes.defaultTpmLimit);
    if (changes.defaultMaxParallel !== undefined) patch.default_max_parallel = validateRateLimit('defaultMaxParallel', changes.defaultMaxParallel);
    if (changes.alertThresholds !== undefined) patch.alert_thresholds = storeThresholds(validateAlertThresholds(changes.alertThresholds));
    return withTransaction(this.deps.db, async (tx) => {
      await this.requireManager(tx, teamId, actor);
      if (Object.keys(patch).length) await tx('teams').where({ id: teamId }).update(patch);
      await this.deps.audit.record(tx, actor, 'team.controls', { type: 'team', id: teamId }, patch);
      return controlsOf((await tx('teams').where({ id: teamId }).first())!);
    });
  }

  /** A member's monthly budget (null removes it). Takes effect at the member's next admission, on every instance. */
  async setMemberBudget(teamId: string, userId: string, budgetMicro: Micro | null, actor: Actor): Promise<MemberBudget> {
    if (budgetMicro !== null && (!Number.isSafeInteger(budgetMicro) || budgetMicro < 0 || budgetMicro > MAX_AMOUNT_MICRO))
      throw badInput('A member budget is a non-negative AUD amount.');
    await withTransaction(this.deps.db, async (tx) => {
      await this.requireManager(tx, teamId, actor);
      // Locks the membership row, like metering does, so the budget changes between two batches, never inside one.
      const member = await tx('team_members').where({ team_id: teamId, user_id: userId }).forUpdate().first('user_id');
      if (!member) throw notFound('Member');
      await tx('team_members').where({ team_id: teamId, user_id: userId }).update({ budget_micro: budgetMicro });
      await this.deps.audit.record(tx, actor, 'team.member_budget', { type: 'team', id: teamId }, { userId, budgetMicro });
    });
    return (await this.get(teamId, actor)).members.find((m) => m.userId === userId)!;
  }

  private async requireManager(q: Queryable, teamId: string, actor: Actor): Promise<void> {
    await requireTeamManager(q, teamId, actor, 'Only team owners and admins set the team’s key controls and member budgets.');
  }
}

function controlsOf(row: Record<string, unknown>): TeamControls {
  const int = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    allowedModels: parseModelList(row.allowed_models), defaultRpmLimit: int(row.default_rpm_limit),
    defaultTpmLimit: int(row.default_tpm_limit), defaultMaxParallel: int(row.default_max_parallel), alertThresholds: parseThresholds(row.alert_thresholds),
  };
}
