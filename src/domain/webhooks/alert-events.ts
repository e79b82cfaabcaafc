import type { Db } from '../../db/knex.js';
import { toDate, toInt } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { microToAud, toMicro } from '../money.js';
import type { EventType } from '../events/event-types.js';
import { recordEvent } from '../events/events.js';
import { RETRY_WINDOW_MS } from './backoff.js';

/** Firings turned into events per run; the rest wait for the next. */
const BATCH = 200;

/**
 * Metering records threshold crossings in alert_firings with its own SQL, in the settlement's transaction (that SQL
 * also runs statement by statement on Galera and stays as it is). Those rows are the durable outbox of crossings:
 * this step makes an event of each firing that has none yet (events.firing_id is unique, and so is its dedupe key),
 * so running it twice, or on two instances at once, makes one event per firing. Firings older than the retry
 * window are left alone: they could not be delivered any more.
 */
export async function eventsFromFirings(db: Db, now: Date): Promise<number> {
  const rows = (await db('alert_firings as f')
    .leftJoin('events as e', 'e.firing_id', 'f.id')
    .leftJoin('api_keys as k', 'k.id', 'f.key_id')
    .whereNull('e.id')
    .where('f.created_at', '>=', new Date(now.getTime() - RETRY_WINDOW_MS))
    .orderBy('f.id')
    .limit(BATCH)
    .select('f.*', 'k.name as key_name')) as Array<Record<string, unknown>>;
  for (const f of rows) {
    const type = f.event_type as EventType;
    const teamScoped = type === 'team.balance_threshold' || type === 'member.budget_threshold';
    await withTransaction(db, (tx) => recordEvent(tx, {
      type,
      userId: (f.user_id as string | null) ?? null,
      teamId: type === 'balance.threshold' ? null : ((f.team_id as string | null) ?? null),
      keyId: (f.key_id as string | null) ?? null,
      dedupeKey: `alert_firing:${String(f.id)}`,
      firingId: toInt(f.id),
      data: {
        threshold: toInt(f.threshold),
        spent: microToAud(toMicro(f.spent_micro)),
        limit: microToAud(toMicro(f.limit_micro)),
        currency: 'AUD',
        periodStart: toDate(f.period_start).toISOString(),
        keyId: (f.key_id as string | null) ?? null,
        keyName: (f.key_name as string | null) ?? null,
        teamId: (f.team_id as string | null) ?? null,
        ...(teamScoped && { userId: (f.user_id as string | null) ?? null }),
      },
    }, toDate(f.created_at)));
  }
  return rows.length;
}
