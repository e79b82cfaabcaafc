import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';

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
}

/** How many keys one run looks at per query; the job loops until none are left. */
const BATCH = 500;

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
    const result: ExpiryResult = { expired: [], retired: [] };
    const now = this.deps.clock.now();
    // Expiry first, then retirement: a key may be both, and its effective status is then `revoked` (retirement wins).
    for (const id of await this.due((q) => q.whereIn('status', ['active', 'limit_reached', 'disabled']).where('expires_at', '<=', now)))
      if (await this.transition(id, 'expired', now, actor)) result.expired.push(id);
    for (const id of await this.due((q) => q.whereNot('status', 'revoked').where('retire_at', '<=', now)))
      if (await this.transition(id, 'retired', now, actor)) result.retired.push(id);
    return result;
  }

  /** Ids of keys matching `where`, read in batches so a backlog of thousands is no single huge query. */
  private async due(where: (q: Knex.QueryBuilder) => Knex.QueryBuilder): Promise<string[]> {
    const ids: string[] = [];
    for (;;) {
      let query = where(this.deps.db('api_keys')).orderBy('id').limit(BATCH);
      if (ids.length) query = query.where('id', '>', ids[ids.length - 1]!);
      const batch = (await query.pluck('id')) as string[];
      ids.push(...batch);
      if (batch.length < BATCH) return ids;
    }
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
      return true;
    });
  }
}
