import type { Queryable } from '../../db/knex.js';
import { storeThresholds, validateAlertThresholds } from '../billing/alerts.js';
import { badInput } from '../errors.js';
import type { CatalogModel } from '../models/models.service.js';
import {
  ALLOWED_MODELS_MAX, LIMIT_RESETS, RATE_LIMIT_MAX, storeModelList, TAG_MAX_LENGTH, TAG_PATTERN, TAGS_MAX, type LimitReset,
} from './controls.js';

/**
 * The controls of a key (docs/limits.md) as keys.create / keys.update take them: validated once here for every door,
 * turned into the columns they are stored in. Absent: unchanged; null: removed.
 */
export interface KeyControlsInput {
  limitReset?: LimitReset | null;
  allowedModels?: string[] | null;
  rpmLimit?: number | null;
  tpmLimit?: number | null;
  maxParallel?: number | null;
  tags?: string[];
  /** Percentages of the spending limit that fire an alert once per period (null: the defaults, [] none). */
  alertThresholds?: number[] | null;
}

/** Resolves a model id or alias to its catalog entry (ModelsService.lookup). */
export type ResolveModel = (name: string) => Promise<CatalogModel | null>;

/** An allow-list as catalog ids: every entry must name a catalog model (an alias is stored as the model it names). */
export async function resolveModelList(list: string[] | null, resolve: ResolveModel): Promise<string[] | null> {
  if (list === null) return null;
  if (list.length > ALLOWED_MODELS_MAX) throw badInput(`An allow-list names at most ${ALLOWED_MODELS_MAX} models.`);
  const ids: string[] = [];
  for (const raw of list) {
    const name = raw.trim();
    const model = name ? await resolve(name) : null;
    if (!model) throw badInput(`The model '${name.slice(0, 100)}' is not in the catalog.`);
    ids.push(model.id);
  }
  return [...new Set(ids)].sort();
}

export function validateRateLimit(label: string, value: number | null): number | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < 1 || value > RATE_LIMIT_MAX) throw badInput(`${label} is a whole number from 1 to ${RATE_LIMIT_MAX}, or none.`);
  return value;
}

export function validateTags(tags: string[]): string[] {
  const clean = [...new Set(tags.map((t) => t.trim()).filter((t) => t.length > 0))];
  if (clean.length > TAGS_MAX) throw badInput(`A key has at most ${TAGS_MAX} tags.`);
  for (const t of clean)
    if (t.length > TAG_MAX_LENGTH || !TAG_PATTERN.test(t))
      throw badInput(`A tag is 1 to ${TAG_MAX_LENGTH} characters: letters, digits and . _ : / @ + - (got '${t.slice(0, 40)}').`);
  return clean.sort();
}

/** The api_keys columns of the given controls, and the tags when given (stored in key_tags). */
export async function controlColumns(input: KeyControlsInput, resolve: ResolveModel): Promise<{ columns: Record<string, unknown>; tags?: string[] }> {
  const columns: Record<string, unknown> = {};
  if (input.limitReset !== undefined) {
    if (input.limitReset !== null && !LIMIT_RESETS.includes(input.limitReset)) throw badInput(`limitReset is one of ${LIMIT_RESETS.join(', ')} or none.`);
    columns.limit_reset = input.limitReset;
  }
  if (input.allowedModels !== undefined) columns.allowed_models = storeModelList(await resolveModelList(input.allowedModels, resolve));
  if (input.rpmLimit !== undefined) columns.rpm_limit = validateRateLimit('rpmLimit', input.rpmLimit);
  if (input.tpmLimit !== undefined) columns.tpm_limit = validateRateLimit('tpmLimit', input.tpmLimit);
  if (input.maxParallel !== undefined) columns.max_parallel = validateRateLimit('maxParallel', input.maxParallel);
  if (input.alertThresholds !== undefined) columns.alert_thresholds = storeThresholds(validateAlertThresholds(input.alertThresholds));
  return { columns, ...(input.tags !== undefined && { tags: validateTags(input.tags) }) };
}

export async function replaceTags(tx: Queryable, keyId: string, tags: string[]): Promise<void> {
  await tx('key_tags').where({ key_id: keyId }).delete();
  if (tags.length) await tx('key_tags').insert(tags.map((tag) => ({ key_id: keyId, tag })));
}

/** The tags of some keys, by key id. */
export async function tagsOf(q: Queryable, keyIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!keyIds.length) return out;
  for (const r of await q('key_tags').whereIn('key_id', keyIds).orderBy('tag').select('key_id', 'tag'))
    out.set(r.key_id as string, [...(out.get(r.key_id as string) ?? []), r.tag as string]);
  return out;
}
