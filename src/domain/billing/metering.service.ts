import type { Db, Queryable } from '../../db/knex.js';
import { BoundedMap } from '../../db/bounded-map.js';
import { MicroBatcher } from '../../db/micro-batcher.js';
import { RowCache } from '../../db/row-cache.js';
import { withTransaction } from '../../db/transaction.js';
import type { Clock } from '../clock.js';
import { keyFromRow, type ApiKey } from '../keys/key.js';
import { rotateByForKeys } from '../keys/key-policy.service.js';
import { toBool } from '../../db/rows.js';
import { allowedModelsOf, parseModelList } from '../keys/controls.js';
import { forgetHolds, holdFromRow, meterBatch, PeriodRolloverDue } from './metering/sql.js';
import { MeteringRowMissing, type AdmissionRequest, type GrowResult, type Hold, type KeyIdentity, type MeteringOp, type OpResult, type Settlement, type SettleResult } from './metering/types.js';
import { billingPeriodAt } from './period.js';
import { lockPersonalBalanceWithPlan } from './rollover.service.js';
import { rollPersonalPeriodIfDue } from './rollover.js';
import { MeteringRefusal, refuseUnusableKey, type RefusalReason } from './refusal.js';

export type { AdmissionRequest, GrowResult, Hold, KeyIdentity, Settlement, SettleResult, UsageOutcome } from './metering/types.js';

/** A key as authentication found it, with the models it may call (its own allow-list narrowed by its team's). */
export type AuthenticatedKey = ApiKey & { mayCall: string[] | null };

const MAX_IDENTITIES = 50_000;
const UNUSABLE_KEY = new Set<RefusalReason>(['invalid_api_key', 'key_revoked', 'key_expired']);
/** Back-off between attempts of a settlement that failed: doubling from the first, up to the last. */
const SETTLE_RETRY_MS = { first: 50, max: 5_000 };
/** Hold deadlines are renewed in one statement per this many holds. */
const RENEW_CHUNK = 500;

export interface MeteringDeps {
  db: Db;
  clock: Clock;
  timeZone: string;
  /**
   * How long a hold lives without renewal. This instance renews the holds of its requests in flight every third of
   * it; a hold nobody renews (its process died, or its admission reply was lost) is released by the release job
   * after it — so within this + the job's interval.
   */
  holdTtlMs: number;
  /** Waits between settlement attempts (tests shorten them). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Admission, settlement and release: the money path of every proxied request (docs/metering.md explains it).
 *
 * The rules are a pure planner (metering/planner.ts); metering/sql.ts locks the rows and carries its changes out.
 * Concurrent calls are grouped by a MicroBatcher into one transaction per batch; with one request in flight a
 * batch is just that request. Lock order, everywhere: keys → personal balances → teams → holds, each sorted by id.
 */
export class MeteringService {
  private readonly batches: MicroBatcher<MeteringOp, Hold | SettleResult | GrowResult>;
  private readonly keyLookups: MicroBatcher<string, Record<string, unknown> | null>;
  /**
   * The metered rows as this instance last wrote them: the guess that makes most batches one round trip. Read-only
   * outside (remembered() in metering/sql.ts compares it with the database).
   */
  readonly rows = new RowCache();
  /** Key hash → identity, for keys this instance has authenticated (see identify). */
  private readonly identities = new BoundedMap<string, KeyIdentity>(MAX_IDENTITIES);
  /** Holds of this instance's requests in flight, settlements still being retried included: renewed, never released. */
  private readonly live = new Map<string, Hold>();
  private renewTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Metering transactions of this instance since it started, by how many round trips they took. */
  readonly transactions = { oneRoundTrip: 0, readThenWrite: 0 };
  /** Settlement attempts that failed and were tried again, and settlements not yet committed. */
  readonly settlements = { retried: 0, pending: 0 };

  constructor(private readonly deps: MeteringDeps) {
    // One metering transaction in flight at a time, admissions and settlements together: the requests arriving
    // meanwhile make the next batch larger, and fewer, larger batches are what keeps up with the traffic (each
    // statement and commit costs the database far more than a row more in it: four lanes of disjoint payers, each
    // with its own transaction in flight, cut the throughput with 100 keys by a third). And the rows this instance wrote
    // last are what the next batch finds — so it plans from them and needs one round trip.
    const options = { maxBatch: 100, maxConcurrent: 1 };
    this.batches = new MicroBatcher((ops: MeteringOp[]) => this.meterWithRollover(ops), options);
    this.keyLookups = new MicroBatcher((hashes) => this.lookUpKeys(hashes), options);
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * Looks a key up by its hash — never from a cache, so revocation and expiry apply to the very next request on
   * every instance (concurrent lookups share one query). Refusals for revoked/expired/unknown keys happen here,
   * before any lock.
   */
  async authenticate(keyHash: string): Promise<AuthenticatedKey> {
    const row = await this.keyLookups.submit(keyHash);
    if (!row) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
    const key = keyFromRow(row, this.deps.clock.now(), this.deps.timeZone);
    refuseUnusableKey(key.status, toBool(row.owner_disabled), key.id);
    return { ...key, mayCall: allowedModelsOf(key.allowedModels, parseModelList(row.team_allowed_models)) };
  }

  /** When the key is due for rotation under the policy in force (GET /v1/key reports it); off the metered path. */
  async rotateBy(key: ApiKey): Promise<Date | null> {
    return (await rotateByForKeys(this.deps.db, [key])).get(key.id) ?? null;
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
   * (minus what in-flight requests already hold), and reserve a hold on each (planner.ts `reserveHolds` says why
   * the holds are capped, and why only when alone). Never retried: when the outcome is unknown (the connection
   * died around COMMIT) the caller gets the error, and a hold that did commit is renewed by nobody and released
   * after its deadline.
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
      const hold = (await this.batches.submit({ admit: item })) as Hold;
      this.track(hold);
      return hold;
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
   * Settlement, idempotent on the request id: records the usage event, adds the cost to the key, releases the holds,
   * debits the payer's buckets in order with ledger entries, flips the key to limit_reached when the limit is hit.
   *
   * Retried until it commits: a served request must be charged, and the locked hold row makes every attempt after
   * a committed one a no-op — so any failure (lost connection, timeout, deadlock, a batch that failed as a whole) is
   * tried again, alone, with back-off, while the hold is kept alive (renewed like any request in flight).
   */
  async settle(hold: Hold, settlement: Settlement): Promise<SettleResult> {
    const op: MeteringOp = { settle: { hold, settlement } };
    this.track(hold);
    this.settlements.pending++;
    try {
      let wait = SETTLE_RETRY_MS.first;
      for (let attempt = 1; ; attempt++) {
        try {
          // The first attempt rides the shared batch; a retry goes alone, so one failing item cannot fail others again.
          const result = attempt === 1 ? await this.batches.submit(op) : (await this.meterWithRollover([op]))[0]!;
          if (result instanceof Error) throw result;
          return result as SettleResult;
        } catch (err) {
          if (err instanceof MeteringRefusal || err instanceof MeteringRowMissing || this.stopped) throw err;
          this.settlements.retried++;
          await this.sleep(wait * (0.5 + Math.random() / 2));
          wait = Math.min(wait * 2, SETTLE_RETRY_MS.max);
        }
      }
    } finally {
      this.settlements.pending--;
      this.untrack(hold.requestId);
    }
  }

  /**
   * Grows the holds of a stream in flight by `byMicro` on the key's side and the payer's, as far as their headrooms
   * go (planner.ts `growOne`), in the shared batches: a stream asks ahead of its output, so the answer never holds
   * it up. Not retried: a growth that failed is asked for again at the next step, and until then the stream lives on
   * what it holds. The result names the limit or balance that ran out when less than asked was granted.
   */
  async grow(hold: Hold, byMicro: number): Promise<GrowResult> {
    return (await this.batches.submit({ grow: { hold, byMicro } })) as GrowResult;
  }

  /**
   * Releases a hold nobody renews (its process died, or its admission reply never arrived): settled at cost 0 as
   * `abandoned` — only if, under its row lock, it is still past its deadline. The release job's door.
   */
  async release(hold: Hold): Promise<SettleResult> {
    return (await this.batches.submit({ release: { hold } })) as SettleResult;
  }

  private async lookUpKeys(hashes: string[]): Promise<Array<Record<string, unknown> | null>> {
    const rows = await this.deps.db('api_keys as k')
      .join('users as u', 'u.id', 'k.owner_id')
      .leftJoin('teams as t', 't.id', 'k.team_id')
      .whereIn('k.key_hash', [...new Set(hashes)])
      .select('k.*', 'u.disabled as owner_disabled', 't.allowed_models as team_allowed_models');
    const byHash = new Map(rows.map((r: Record<string, unknown>) => [r.key_hash as string, r]));
    return hashes.map((h) => byHash.get(h) ?? null);
  }

  private async meterWithRollover(ops: MeteringOp[]): Promise<OpResult[]> {
    for (;;) {
      const now = this.deps.clock.now();
      const period = billingPeriodAt(now, this.deps.timeZone);
      try {
        const batch = await meterBatch(this.deps.db, ops, { now, period, timeZone: this.deps.timeZone, holdTtlMs: this.deps.holdTtlMs, cache: this.rows });
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

  // ---- Keeping live holds alive -------------------------------------------------------------------------------

  private track(hold: Hold): void {
    this.live.set(hold.requestId, hold);
    if (!this.renewTimer) {
      this.renewTimer = setInterval(() => {
        this.renewHolds().catch(() => undefined); // a failed renewal is tried again at the next tick
      }, Math.max(250, Math.floor(this.deps.holdTtlMs / 3)));
      this.renewTimer.unref();
    }
  }

  private untrack(requestId: string): void {
    this.live.delete(requestId);
    if (this.live.size === 0 && this.renewTimer) {
      clearInterval(this.renewTimer);
      this.renewTimer = null;
    }
  }

  /** Requests in flight on this instance (settlements being retried included). */
  get liveHolds(): number {
    return this.live.size;
  }

  /**
   * Pushes the deadline of every hold of this instance's requests in flight forward: one statement per 500 holds,
   * touching only hold rows (the last in the lock order, so it cannot take part in a cycle). What keeps a 30-minute
   * stream, or a settlement retried through a database outage, from being taken for abandoned.
   */
  async renewHolds(): Promise<number> {
    const ids = [...this.live.keys()];
    const deadline = new Date(this.deps.clock.now().getTime() + this.deps.holdTtlMs);
    let renewed = 0;
    for (let i = 0; i < ids.length; i += RENEW_CHUNK) {
      const chunk = ids.slice(i, i + RENEW_CHUNK);
      renewed += await this.deps.db('holds').whereIn('request_id', chunk).update({ deadline_at: deadline });
      forgetHolds(this.rows, chunk);
    }
    return renewed;
  }

  /**
   * This instance stops metering: it waits (up to `graceMs`) for settlements still being retried, then stops retrying
   * and renewing. The holds left are released by the release job after the TTL, like the holds of a dead process.
   */
  async shutdown(graceMs = 5_000): Promise<void> {
    const until = Date.now() + graceMs;
    while (this.settlements.pending > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    this.stopped = true;
    this.live.clear();
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }

  /** How long a hold lives unless renewed. */
  get holdTtlMs(): number {
    return this.deps.holdTtlMs;
  }

  /** Holds past their deadline, except this instance's own live ones: their process died, or nobody knows them. */
  async staleHolds(limit = 500, q: Queryable = this.deps.db): Promise<Hold[]> {
    const rows = await q('holds').where('deadline_at', '<=', this.deps.clock.now()).orderBy('deadline_at').limit(limit);
    return rows.map(holdFromRow).filter((h: Hold) => !this.live.has(h.requestId));
  }
}
