import type { Queryable } from '../../db/knex.js';
import { toBool } from '../../db/rows.js';
import { toMicro, toMicroOrNull, type Micro } from '../money.js';

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
