import type { Db } from '../../db/knex.js';
import { toDate } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { recordKeyEvent } from '../events/key-events.js';
import { KEY_BATCH, keyIdsWhere } from './key-batches.js';

export interface KeyExpiryDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

export interface ExpiryResult {
  /** Keys whose stored status became `expired` in this run. */
  expired: string[];
  /** Rotated keys whose grace period ended: stored status became `revoked`. */
  retired: string[];
  /** `key.expiring` warnings recorded in this run. */
  warned: number;
}

const DAY_MS = 24 * 3600_000;
/** Warnings before expiry (docs/webhooks.md): a week and a day ahead; a key inside the day gets only the last. */
export const EXPIRY_WARNINGS = [{ horizon: '7d', ms: 7 * DAY_MS }, { horizon: '1d', ms: DAY_MS }] as const;

/** How many keys one run looks at per query; the job loops until none are left. */

/**
 * Brings the STORED status of keys in line with the clock. Requests never wait for this: every read already judges
 * expiry and retirement itself (effectiveStatus), so a key is refused at its expiry instant. This job makes the
 * stored status, the audit trail and status filters catch up.
 *
 * Each key changes in its own short transaction with a conditional UPDATE: when two instances race, the database
 * lets one of them match the row and the other matches nothing, so the change and its audit event happen once.
 * Short transactions also keep the job from holding many key locks that settlements are waiting for.
 */
export class KeyExpiryService {
  constructor(private readonly deps: KeyExpiryDeps) {}

  async expireDueKeys(actor: Actor): Promise<ExpiryResult> {
    const result: ExpiryResult = { expired: [], retired: [], warned: 0 };
    const now = this.deps.clock.now();
    // Expiry first, then retirement: a key may be both, and its effective status is then `revoked` (retirement wins).
    for (const id of await keyIdsWhere(this.deps.db, (q) => q.whereIn('status', ['active', 'limit_reached', 'disabled']).where('expires_at', '<=', now)))
      if (await this.transition(id, 'expired', now, actor)) result.expired.push(id);
    for (const id of await keyIdsWhere(this.deps.db, (q) => q.whereNot('status', 'revoked').where('retire_at', '<=', now)))
      if (await this.transition(id, 'retired', now, actor)) result.retired.push(id);
    result.warned = await this.warnExpiring(now);
    return result;
  }

  /**
   * `key.expiring` for live keys expiring within a horizon, once per key and horizon (the dedupe key): keys already
   * warned are filtered out first, so a run costs no writes for them.
   */
  private async warnExpiring(now: Date): Promise<number> {
    const soon = await keyIdsWhere(this.deps.db, (q) => q.whereIn('status', ['active', 'limit_reached', 'disabled']).whereNull('revoked_at')
      .where('expires_at', '>', now).where('expires_at', '<=', new Date(now.getTime() + EXPIRY_WARNINGS[0].ms)));
    let warned = 0;
    for (let i = 0; i < soon.length; i += KEY_BATCH) {
      const rows = (await this.deps.db('api_keys').whereIn('id', soon.slice(i, i + KEY_BATCH)).select('id', 'expires_at')) as Array<{ id: string; expires_at: unknown }>;
      const wanted = rows.map((r) => {
        const left = toDate(r.expires_at).getTime() - now.getTime();
        const horizon = left <= EXPIRY_WARNINGS[1].ms ? EXPIRY_WARNINGS[1].horizon : EXPIRY_WARNINGS[0].horizon;
        return { id: r.id, horizon, dedupeKey: `key.expiring:${r.id}:${horizon}` };
      });
      const done = new Set((await this.deps.db('events').whereIn('dedupe_key', wanted.map((w) => w.dedupeKey)).pluck('dedupe_key')) as string[]);
      for (const w of wanted.filter((x) => !done.has(x.dedupeKey))) {
        await withTransaction(this.deps.db, (tx) => recordKeyEvent(tx, 'key.expiring', w.id, now, { horizon: w.horizon }, w.dedupeKey));
        warned++;
      }
    }
    return warned;
  }


  private transition(id: string, to: 'expired' | 'retired', now: Date, actor: Actor): Promise<boolean> {
    return withTransaction(this.deps.db, async (tx) => {
      const changed =
        to === 'expired'
          ? await tx('api_keys')
              .where({ id })
              .whereIn('status', ['active', 'limit_reached', 'disabled'])
              .where('expires_at', '<=', now)
              .update({ status: 'expired', updated_at: now })
          : await tx('api_keys')
              .where({ id })
              .whereNot('status', 'revoked')
              .where('retire_at', '<=', now)
              .update({ status: 'revoked', revoked_at: now, updated_at: now });
      if (!changed) return false;
      await this.deps.audit.record(tx, actor, to === 'expired' ? 'key.expire' : 'key.retire', { type: 'key', id });
      if (to === 'expired') await recordKeyEvent(tx, 'key.expired', id, now);
      else await recordKeyEvent(tx, 'key.revoked', id, now, { reason: 'retired_after_rotation' });
      return true;
    });
  }
}
