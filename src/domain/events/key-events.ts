import type { Queryable } from '../../db/knex.js';
import { toDateOrNull } from '../../db/rows.js';
import type { EventType } from './event-types.js';
import { recordEvent } from './events.js';

/** The fields of an api_keys row a key event names. */
interface KeyRowFields {
  id: string;
  name: string;
  owner_id: string;
  team_id: string | null;
  expires_at?: unknown;
}

/**
 * Records a key's event in the transaction that changed it: scope from the key (its team, else its owner), data
 * with its id, name and team, never its secret or hash.
 */
export async function recordKeyEvent(
  tx: Queryable, type: EventType, keyId: string, now: Date, extra: Record<string, unknown> = {}, dedupeKey?: string,
): Promise<void> {
  const row = (await tx('api_keys').where({ id: keyId }).first('id', 'name', 'owner_id', 'team_id', 'expires_at')) as KeyRowFields | undefined;
  if (!row) return;
  const expiresAt = toDateOrNull(row.expires_at);
  await recordEvent(tx, {
    type, userId: row.owner_id, teamId: row.team_id, keyId: row.id, dedupeKey,
    data: { keyId: row.id, keyName: row.name, teamId: row.team_id, expiresAt: expiresAt?.toISOString() ?? null, ...extra },
  }, now);
}
