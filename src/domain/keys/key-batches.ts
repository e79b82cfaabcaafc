import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';

/** How many keys a job reads, loads or changes at a time. */
export const KEY_BATCH = 500;

/** Ids of keys matching `where`, read in batches by id so a backlog of thousands is no single huge query. */
export async function keyIdsWhere(db: Db, where: (q: Knex.QueryBuilder) => Knex.QueryBuilder): Promise<string[]> {
  const ids: string[] = [];
  for (;;) {
    let query = where(db('api_keys')).orderBy('id').limit(KEY_BATCH);
    if (ids.length) query = query.where('id', '>', ids[ids.length - 1]!);
    const batch = (await query.pluck('id')) as string[];
    ids.push(...batch);
    if (batch.length < KEY_BATCH) return ids;
  }
}
