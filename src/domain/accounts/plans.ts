import type { Db, Queryable } from '../../db/knex.js';
import { toBool } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { isInstallationAdmin, type Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, conflict, forbidden, isDuplicateKeyError, notFound } from '../errors.js';
import { newId } from '../ids.js';
import { MAX_AMOUNT_MICRO, toMicro, toMicroOrNull, type Micro } from '../money.js';

export interface Plan {
  id: string;
  name: string;
  includedMicro: Micro;
  overageAllowed: boolean;
  /** null = unlimited overage (when allowed). */
  overageCapMicro: Micro | null;
  isDefault: boolean;
}

export function planFromRow(r: Record<string, unknown>): Plan {
  return {
    id: r.id as string,
    name: r.name as string,
    includedMicro: toMicro(r.included_micro),
    overageAllowed: toBool(r.overage_allowed),
    overageCapMicro: toMicroOrNull(r.overage_cap_micro),
    isDefault: toBool(r.is_default),
  };
}

export async function listPlans(q: Queryable): Promise<Plan[]> {
  return (await q('plans').orderBy('included_micro')).map(planFromRow);
}

export async function findPlan(q: Queryable, where: { id?: string; name?: string }): Promise<Plan | null> {
  let query = q('plans').first();
  if (where.id) query = query.where('id', where.id);
  if (where.name) query = query.whereRaw('LOWER(name) = ?', [where.name.toLowerCase()]);
  const row = await query;
  return row ? planFromRow(row) : null;
}

export async function defaultPlan(q: Queryable): Promise<Plan> {
  const row = (await q('plans').where('is_default', true).first()) ?? (await q('plans').orderBy('included_micro').first());
  if (!row) throw new Error('no plans exist: run the migrations');
  return planFromRow(row);
}

export interface PlanInput {
  name: string;
  includedMicro: Micro;
  overageAllowed: boolean;
  /** null = unlimited overage (when allowed). */
  overageCapMicro: Micro | null;
  /** The plan new users get. Making one plan the default takes it from the others. */
  isDefault?: boolean;
}

export const PLAN_NAME_MAX = 100;

export interface PlansDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

/** Plans are edited by installation admins only; every change is audited with its before and after. */
export class PlansService {
  constructor(private readonly deps: PlansDeps) {}

  list(q: Queryable = this.deps.db): Promise<Plan[]> {
    return listPlans(q);
  }

  async create(input: PlanInput, actor: Actor): Promise<Plan> {
    if (!isInstallationAdmin(actor)) throw forbidden();
    const plan = validatePlan(input);
    const now = this.deps.clock.now();
    const id = newId();
    return this.write(async (tx) => {
      await ensureNameFree(tx, plan.name, null);
      const previousDefaultId = plan.isDefault ? await takeDefault(tx, now) : undefined;
      await tx('plans').insert({ id, ...planRow(plan), is_default: plan.isDefault ?? false, created_at: now, updated_at: now });
      const created = planFromRow((await tx('plans').where({ id }).first())!);
      await this.deps.audit.record(tx, actor, 'plan.create', { type: 'plan', id }, { ...created, ...(previousDefaultId && { previousDefaultId }) });
      return created;
    });
  }

  async update(id: string, changes: Partial<PlanInput>, actor: Actor): Promise<Plan> {
    if (!isInstallationAdmin(actor)) throw forbidden();
    const now = this.deps.clock.now();
    return this.write(async (tx) => {
      const row = await tx('plans').where({ id }).forUpdate().first();
      if (!row) throw notFound('Plan');
      const before = planFromRow(row);
      const plan = validatePlan({ ...before, ...definedOnly(changes) });
      await ensureNameFree(tx, plan.name, id);
      if (before.isDefault && changes.isDefault === false)
        throw badInput('Every installation needs a default plan; make another plan the default instead.');
      const previousDefaultId = changes.isDefault && !before.isDefault ? await takeDefault(tx, now) : undefined;
      await tx('plans').where({ id }).update({ ...planRow(plan), ...(changes.isDefault && { is_default: true }), updated_at: now });
      const after = planFromRow((await tx('plans').where({ id }).first())!);
      await this.deps.audit.record(tx, actor, 'plan.update', { type: 'plan', id }, { before, after, ...(previousDefaultId && { previousDefaultId }) });
      return after;
    });
  }

  private async write<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await withTransaction(this.deps.db, fn);
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict('A plan with that name already exists.');
      throw err;
    }
  }
}

/** Clears the current default (a new one is about to be set) and says which plan it was, for the audit trail. */
async function takeDefault(q: Queryable, now: Date): Promise<string | undefined> {
  const current = await q('plans').where('is_default', true).first('id');
  await q('plans').where('is_default', true).update({ is_default: false, updated_at: now });
  return (current?.id as string | undefined) ?? undefined;
}

/** Plans are found by name case-insensitively (the CLI's --plan), so names must be unique that way on both databases. */
async function ensureNameFree(q: Queryable, name: string, exceptId: string | null): Promise<void> {
  let query = q('plans').whereRaw('LOWER(name) = ?', [name.toLowerCase()]);
  if (exceptId) query = query.whereNot('id', exceptId);
  if (await query.first('id')) throw conflict('A plan with that name already exists.');
}

function validatePlan(input: PlanInput): PlanInput {
  const name = input.name.trim();
  if (name.length < 1 || name.length > PLAN_NAME_MAX) throw badInput(`A plan name is 1 to ${PLAN_NAME_MAX} characters.`);
  for (const amount of [input.includedMicro, input.overageCapMicro ?? 0])
    if (!Number.isSafeInteger(amount) || amount < 0 || amount > MAX_AMOUNT_MICRO) throw badInput('Plan amounts are non-negative AUD amounts.');
  return { ...input, name };
}

function planRow(plan: PlanInput) {
  return {
    name: plan.name,
    included_micro: plan.includedMicro,
    overage_allowed: plan.overageAllowed,
    overage_cap_micro: plan.overageCapMicro,
  };
}

function definedOnly<T extends object>(changes: T): Partial<T> {
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as Partial<T>;
}
