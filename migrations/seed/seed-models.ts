import type { Knex } from 'knex';
import { catalogSeed, type SeedModel } from './catalog.js';

/** USD per million tokens → micro-AUD per million tokens at the catalog's rate, rounded to the micro-AUD. */
export function usdToMicroAud(usd: number, audPerUsd: number = catalogSeed.audPerUsd): number {
  return Math.round(usd * audPerUsd * 1_000_000);
}

/** The `models` row of a catalog entry as seeded: enabled, at the catalog's list prices (a cache price not listed: null, billed at the input price). */
export function seedRow(m: SeedModel, now: Date) {
  const orNull = (usd: number | undefined) => (usd === undefined ? null : usdToMicroAud(usd));
  return {
    id: m.id, provider: m.provider, upstream_model: m.upstreamModel, input_micro_per_mtok: usdToMicroAud(m.usdPerMTok.input),
    output_micro_per_mtok: usdToMicroAud(m.usdPerMTok.output), cached_input_micro_per_mtok: orNull(m.usdPerMTok.cachedInput),
    cache_write_micro_per_mtok: orNull(m.usdPerMTok.cacheWrite), cache_write_1h_micro_per_mtok: orNull(m.usdPerMTok.cacheWrite1h),
    max_output_tokens: m.maxOutputTokens, enabled: true, created_at: now, updated_at: now,
  };
}

/**
 * Inserts the catalog entries an installation lacks and returns their ids. An entry it has — seeded earlier,
 * created or edited by an admin, disabled on purpose — is left exactly as it is: a row cannot tell an admin's price
 * from an older list price, and overwriting either would change what users are charged without anyone deciding it.
 * A name an admin already uses as an alias is not seeded either (names are unique across ids and aliases).
 */
export async function seedMissingModels(knex: Knex, models: readonly SeedModel[] = catalogSeed.models): Promise<string[]> {
  const ids = models.map((m) => m.id);
  const taken = new Set<string>([
    ...(await knex('models').whereIn('id', ids).select('id')).map((r: { id: string }) => r.id),
    ...(await knex('model_aliases').whereIn('alias', ids).select('alias')).map((r: { alias: string }) => r.alias),
  ]);
  const now = new Date();
  const rows = models.filter((m) => !taken.has(m.id)).map((m) => seedRow(m, now));
  if (rows.length) await knex('models').insert(rows);
  return rows.map((r) => r.id);
}
