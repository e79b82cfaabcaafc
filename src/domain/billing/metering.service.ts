import type { Db, Queryable } from '../../db/knex.js';
import { BoundedMap } from '../../db/bounded-map.js';
import { MicroBatcher } from '../../db/micro-batcher.js';
import { RowCache } from '../../db/row-cache.js';
import { toBool, toDate } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Clock } from '../clock.js';
import { toMicro, type Micro } from '../money.js';
import { keyFromRow, type ApiKey } from '../keys/key.js';
import type { CatalogModel } from '../models/models.service.js';
import { meterBatch, PeriodRolloverDue, type MeteringOp } from './metering-batch.js';
import { billingPeriodAt } from './period.js';
import { lockPersonalBalanceWithPlan } from './rollover.service.js';
import { rollPersonalPeriodIfDue } from './rollover.js';
import { MeteringRefusal, refuseUnusableKey, type RefusalReason } from './refusal.js';

export type UsageOutcome = 'ok' | 'upstream_error' | 'client_aborted' | 'abandoned';

/** An admitted request: what was reserved, for whom. Kept in memory by the proxy and as a row in `holds`. */
export interface Hold {
  requestId: string;
  keyId: string;
  userId: string;
  teamId: string | null;
  amountMicro: Micro;
  model: string;
  provider: string;
  endpoint: string;
  streamed: boolean;
  createdAt: Date;
}

/** What never changes about a key: which it is and who pays. */
export interface KeyIdentity {
  id: string;
  ownerId: string;
  teamId: string | null;
}

const MAX_IDENTITIES = 50_000;
const UNUSABLE_KEY = new Set<RefusalReason>(['invalid_api_key', 'key_revoked', 'key_expired']);

export interface AdmissionRequest {
  requestId: string;
  keyId: string;
  /** The key's owner and team, as authentication found them (they never change); looked up when absent. */
  ownerId?: string;
  teamId?: string | null;
  /** Estimated maximum cost of the request (input size + max output at catalog prices). */
  estimateMicro: Micro;
  model: string;
  provider: string;
  endpoint: string;
  streamed: boolean;
  /**
   * The catalog entry the estimate was computed from (possibly remembered by the proxy). Admission checks it is
   * still the catalog's, and refuses with CatalogEntryChanged when not, so a price change or a disabled model
   * applies to the very next request on every instance.
   */
  catalog?: CatalogModel;
}

export interface SettlementItem {
  hold: Hold;
  settlement: Settlement;
}

export interface Settlement {
  inputTokens: number;
  outputTokens: number;
  costMicro: Micro;
  outcome: UsageOutcome;
  estimated: boolean;
  httpStatus: number;
  latencyMs: number;
}

export interface SettleResult {
  /** false when this request id was already settled or released: nothing was charged twice. */
  applied: boolean;
  costMicro: Micro;
}

export interface MeteringDeps {
  db: Db;
  clock: Clock;
  timeZone: string;
  /** How long a hold may live before the release job treats its request as abandoned. */
  holdTtlMs: number;
}

/**
 * Admission and settlement: the money path of every proxied request (docs/metering.md explains it in full).
 *
 * Concurrent calls are grouped by a MicroBatcher into one transaction per batch (metering-batch.ts), applying the
 * same rules item by item to the locked rows; with one request in flight a batch is just that request. Lock order,
 * everywhere: keys → personal balances → teams → holds, each sorted by id — so transactions of this instance and of
 * others never wait on each other in a cycle; deadlocks that still happen (gap locks) are retried whole.
 */
export class MeteringService {
  private readonly batches: MicroBatcher<MeteringOp, Hold | SettleResult>;
  private readonly keyLookups: MicroBatcher<string, Record<string, unknown> | null>;
  /** The metered rows as this instance last wrote them: the guess that makes most batches one round trip. */
  private readonly rows = new RowCache();
  /** Key hash → identity, for keys this instance has authenticated (see identify). */
  private readonly identities = new BoundedMap<string, KeyIdentity>(MAX_IDENTITIES);
  /** Metering transactions of this instance since it started, by how many round trips they took. */
  readonly transactions = { oneRoundTrip: 0, readThenWrite: 0 };

  constructor(private readonly deps: MeteringDeps) {
    // One metering transaction in flight at a time, admissions and settlements together: the requests arriving
    // meanwhile make the next batch larger, and fewer, larger batches are what keeps up with the traffic (each
    // statement and commit costs the database far more than a row more in it: four lanes of disjoint payers, each
    // with its own transaction in flight, cut the throughput with 100 keys by a third). And the rows this instance wrote
    // last are what the next batch finds — so it plans from them and needs one round trip.
    const options = { maxBatch: 100, maxConcurrent: 1 };
    this.batches = new MicroBatcher((ops: MeteringOp[]) => this.meterWithRollover(ops), options);
    this.keyLookups = new MicroBatcher((hashes) => this.lookUpKeys(hashes), options);
  }

  /**
   * Looks a key up by its hash — on every request, never from a cache, so revocation and expiry apply to the very
   * next request on every instance (concurrent lookups share one query). Refusals for revoked/expired/unknown keys
   * happen here, before any lock.
   */
  async authenticate(keyHash: string): Promise<ApiKey> {
    const row = await this.keyLookups.submit(keyHash);
    if (!row) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
    const key = keyFromRow(row, this.deps.clock.now());
    refuseUnusableKey(key.status, toBool(row.owner_disabled));
    return key;
  }

  /**
   * Who a key is — its id, owner and team, which never change — by its hash: from memory when this instance has
   * seen the key, else by `authenticate`. Only for requests that go on to admission, which re-checks under the key's
   * row lock everything that can change (revoked, expired, limit, owner disabled): so revocation still applies to
   * the very next request, on every instance, while a known key costs no lookup.
   */
  async identify(keyHash: string): Promise<KeyIdentity> {
    const known = this.identities.get(keyHash);
    if (known) return known;
    const key = await this.authenticate(keyHash);
    const identity = { id: key.id, ownerId: key.ownerId, teamId: key.teamId };
    this.identities.set(keyHash, identity);
    return identity;
  }

  /**
   * Admission: re-check the key under its row lock, find the headroom left by its limit and by its payer's balance
   * (minus what in-flight requests already hold), and reserve a hold.
   *
   * Why the hold is capped, and why only when alone: a request whose estimate fits the headroom reserves all of
   * it; one whose estimate does not fit is admitted only when no other request holds anything, and then reserves
   * just the remaining headroom. So at most one request at a time can cross the limit, and the final spend is at
   * most the limit plus that one request's cost — however many requests arrive together.
   */
  async admit(req: AdmissionRequest): Promise<Hold> {
    let { ownerId, teamId } = req;
    if (ownerId === undefined) {
      // A key's owner and team are fixed at creation, so reading them without a lock is safe.
      const row = await this.deps.db('api_keys').where({ id: req.keyId }).first('owner_id', 'team_id');
      if (!row) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
      ownerId = row.owner_id as string;
      teamId = (row.team_id as string | null) ?? null;
    }
    const item = { ...req, ownerId, teamId: teamId ?? null };
    try {
      return (await this.batches.submit({ admit: item })) as Hold;
    } catch (err) {
      // A key that can no longer be used goes back to being looked up, which refuses it before any lock.
      if (err instanceof MeteringRefusal && UNUSABLE_KEY.has(err.reason)) this.forgetIdentity(req.keyId);
      throw err;
    }
  }

  private forgetIdentity(keyId: string): void {
    for (const [hash, identity] of this.identities) if (identity.id === keyId) this.identities.delete(hash);
  }

  /**
   * Settlement, idempotent on the request id: records the usage event, adds the cost to the key, releases the hold,
   * debits the payer's buckets in order with ledger entries, flips the key to limit_reached when the limit is hit.
   * The locked hold row is the idempotency guard: a second settlement (a retry, or the release job racing the
   * proxy) finds no hold and changes nothing.
   */
  settle(hold: Hold, settlement: Settlement): Promise<SettleResult> {
    return this.batches.submit({ settle: { hold, settlement } }) as Promise<SettleResult>;
  }

  private async lookUpKeys(hashes: string[]): Promise<Array<Record<string, unknown> | null>> {
    const rows = await this.deps.db('api_keys as k')
      .join('users as u', 'u.id', 'k.owner_id')
      .whereIn('k.key_hash', [...new Set(hashes)])
      .select('k.*', 'u.disabled as owner_disabled');
    const byHash = new Map(rows.map((r: Record<string, unknown>) => [r.key_hash as string, r]));
    return hashes.map((h) => byHash.get(h) ?? null);
  }

  private async meterWithRollover(ops: MeteringOp[]): Promise<Array<Hold | SettleResult | Error>> {
    for (;;) {
      const now = this.deps.clock.now();
      const period = billingPeriodAt(now, this.deps.timeZone);
      try {
        const batch = await meterBatch(this.deps.db, ops, { now, period, holdTtlMs: this.deps.holdTtlMs, cache: this.rows });
        this.transactions[batch.guessed ? 'oneRoundTrip' : 'readThenWrite']++;
        return batch.results;
      } catch (err) {
        if (!(err instanceof PeriodRolloverDue)) throw err;
        // A month boundary has passed for some payers: roll them over (statement + reset, once, under their row
        // lock) and meter again, so the charges land in the new period's counters.
        for (const userId of err.userIds)
          await withTransaction(this.deps.db, async (tx) => {
            const row = await lockPersonalBalanceWithPlan(tx, userId);
            if (row) await rollPersonalPeriodIfDue(tx, row, period, now);
          });
      }
    }
  }

  /** How long a hold lives unless extended; the proxy extends live requests' holds well before this. */
  get holdTtlMs(): number {
    return this.deps.holdTtlMs;
  }

  /**
   * Pushes a live request's hold deadline forward, so a long stream (a 64k-token answer can run for half an hour)
   * is not taken for abandoned and released at cost 0 by the release job while it is still being served. One
   * single-row UPDATE of the hold, holding no other lock: it cannot take part in a lock-order cycle. false when
   * the hold is gone (already settled or released).
   */
  async extendHold(requestId: string): Promise<boolean> {
    const deadline = new Date(this.deps.clock.now().getTime() + this.deps.holdTtlMs);
    return (await this.deps.db('holds').where({ request_id: requestId }).update({ deadline_at: deadline })) > 0;
  }

  /** Holds whose deadline has passed: their process died or hung. */
  async staleHolds(limit = 500, q: Queryable = this.deps.db): Promise<Hold[]> {
    const rows = await q('holds').where('deadline_at', '<=', this.deps.clock.now()).orderBy('deadline_at').limit(limit);
    return rows.map((r: Record<string, unknown>) => ({
      requestId: r.request_id as string, keyId: r.key_id as string, userId: r.user_id as string,
      teamId: (r.team_id as string | null) ?? null, amountMicro: toMicro(r.amount_micro), model: r.model as string,
      provider: r.provider as string, endpoint: r.endpoint as string, streamed: toBool(r.streamed),
      createdAt: toDate(r.created_at),
    }));
  }
}
