import type { Db, Queryable, Tx } from '../../db/knex.js';
import { toBool, toDate } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Clock } from '../clock.js';
import { toMicro, toMicroOrNull, type Micro } from '../money.js';
import { keyFromRow, type ApiKey, type KeyStatus } from '../keys/key.js';
import { personalAvailable, splitPersonalDebit, type PersonalBuckets } from './debit-order.js';
import { appendLedger, type LedgerEntry } from './ledger.js';
import { billingPeriodAt } from './period.js';
import { rollPersonalPeriodIfDue } from './rollover.js';
import { MeteringRefusal } from './refusal.js';

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

export interface AdmissionRequest {
  requestId: string;
  keyId: string;
  /** Estimated maximum cost of the request (input size + max output at catalog prices). */
  estimateMicro: Micro;
  model: string;
  provider: string;
  endpoint: string;
  streamed: boolean;
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

/** How long a client should wait before retrying when in-flight holds use up the headroom. */
const PENDING_RETRY_AFTER_SECONDS = 2;

/**
 * Admission and settlement: the money path of every proxied request (docs/metering.md explains it in full).
 *
 * Lock order, everywhere: key row → the payer's row (personal balance or team) → the hold row. One order means
 * two transactions never wait on each other in a cycle; deadlocks that still happen (gap locks) are retried whole.
 */
export class MeteringService {
  constructor(private readonly deps: MeteringDeps) {}

  /** Looks a key up by its hash; refusals for revoked/expired/unknown happen here, before any lock. */
  async authenticate(keyHash: string): Promise<ApiKey> {
    const row = await this.deps.db('api_keys as k')
      .join('users as u', 'u.id', 'k.owner_id')
      .where('k.key_hash', keyHash)
      .first('k.*', 'u.disabled as owner_disabled');
    if (!row) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
    const key = keyFromRow(row, this.deps.clock.now());
    refuseUnusable(key.status, toBool(row.owner_disabled));
    return key;
  }

  /**
   * Admission: in one transaction, re-check the key under its row lock, find the headroom left by its limit and by
   * its payer's balance (minus what in-flight requests already hold), and reserve a hold.
   *
   * Why the hold is capped, and why only when alone: a request whose estimate fits the headroom reserves all of
   * it; one whose estimate does not fit is admitted only when no other request holds anything, and then reserves
   * just the remaining headroom. So at most one request at a time can cross the limit, and the final spend is at
   * most the limit plus that one request's cost — however many requests arrive together.
   */
  async admit(req: AdmissionRequest): Promise<Hold> {
    const now = this.deps.clock.now();
    return withTransaction(this.deps.db, async (tx) => {
      const keyRow = await tx('api_keys').where({ id: req.keyId }).forUpdate().first();
      if (!keyRow) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
      const key = keyFromRow(keyRow, now);
      refuseUnusable(key.status, false);
      const keyRoom = key.spendLimitMicro === null ? Number.MAX_SAFE_INTEGER : key.spendLimitMicro - key.spendMicro;
      if (key.status === 'limit_reached' || keyRoom <= 0) throw limitReached(key);
      const keyHold = reserve(req.estimateMicro, keyRoom, key.heldMicro);
      if (keyHold === null)
        throw new MeteringRefusal('spend_limit_pending', 'Requests in flight have reserved the rest of this key’s spending limit; retry shortly.', {
          spentMicro: key.spendMicro, limitMicro: key.spendLimitMicro, retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
        });

      const payer = await this.lockPayer(tx, key, now);
      if (payer.available <= 0) throw new MeteringRefusal('insufficient_balance', payer.emptyMessage);
      const payerHold = reserve(req.estimateMicro, payer.available, payer.held);
      if (payerHold === null)
        throw new MeteringRefusal('spend_limit_pending', 'Requests in flight have reserved the rest of the balance; retry shortly.', {
          retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
        });

      const amount = Math.min(keyHold, payerHold);
      await tx('api_keys').where({ id: key.id }).increment('held_micro', amount);
      if (key.teamId) await tx('teams').where({ id: key.teamId }).increment('held_micro', amount);
      else await tx('personal_balances').where({ user_id: key.ownerId }).increment('held_micro', amount);
      const hold: Hold = {
        requestId: req.requestId, keyId: key.id, userId: key.ownerId, teamId: key.teamId, amountMicro: amount,
        model: req.model, provider: req.provider, endpoint: req.endpoint, streamed: req.streamed, createdAt: now,
      };
      await tx('holds').insert({
        request_id: hold.requestId, key_id: hold.keyId, user_id: hold.userId, team_id: hold.teamId, amount_micro: amount,
        model: hold.model, provider: hold.provider, endpoint: hold.endpoint, streamed: hold.streamed,
        created_at: now, deadline_at: new Date(now.getTime() + this.deps.holdTtlMs),
      });
      return hold;
    });
  }

  /**
   * Settlement, idempotent on the request id: records the usage event, adds the cost to the key, releases the hold,
   * debits the payer's buckets in order with ledger entries, flips the key to limit_reached when the limit is hit.
   * Deleting the hold row is the idempotency guard: a second settlement (a retry, or the release job racing the
   * proxy) finds no hold and changes nothing.
   */
  async settle(hold: Hold, s: Settlement): Promise<SettleResult> {
    return withTransaction(this.deps.db, async (tx) => {
      const now = this.deps.clock.now();
      const keyRow = await tx('api_keys').where({ id: hold.keyId }).forUpdate().first('spend_micro', 'spend_limit_micro', 'status');
      let personal: PersonalBuckets | null = null;
      let periodStart: Date | null = null;
      if (hold.teamId) await tx('teams').where({ id: hold.teamId }).forUpdate().first('id');
      else ({ buckets: personal, periodStart } = await this.lockPersonal(tx, hold.userId, now));

      const released = await tx('holds').where({ request_id: hold.requestId }).delete();
      if (!released) return { applied: false, costMicro: 0 };

      const cost = s.costMicro;
      const split = personal ? splitPersonalDebit(cost, personal) : { includedMicro: 0, prepaidMicro: 0, overageMicro: 0 };
      await tx('usage_events').insert({
        request_id: hold.requestId, key_id: hold.keyId, user_id: hold.userId, team_id: hold.teamId, model: hold.model,
        provider: hold.provider, endpoint: hold.endpoint, input_tokens: s.inputTokens, output_tokens: s.outputTokens,
        cost_micro: cost, included_micro: split.includedMicro, prepaid_micro: split.prepaidMicro, overage_micro: split.overageMicro,
        team_micro: hold.teamId ? cost : 0, outcome: s.outcome, estimated: s.estimated, http_status: s.httpStatus,
        latency_ms: Math.max(0, Math.round(s.latencyMs)), streamed: hold.streamed, started_at: hold.createdAt, created_at: now,
      });

      const spend = toMicro(keyRow?.spend_micro) + cost;
      const limit = toMicroOrNull(keyRow?.spend_limit_micro);
      const reachesLimit = keyRow?.status === 'active' && limit !== null && spend >= limit;
      await tx('api_keys')
        .where({ id: hold.keyId })
        .update({
          spend_micro: tx.raw('spend_micro + ?', [cost]),
          held_micro: tx.raw('held_micro - ?', [hold.amountMicro]),
          request_count: tx.raw('request_count + 1'),
          last_used_at: now,
          ...(reachesLimit && { status: 'limit_reached', updated_at: now }),
        });

      const entries: LedgerEntry[] = [];
      const base = { keyId: hold.keyId, kind: 'usage' as const, requestId: hold.requestId };
      if (hold.teamId) {
        await tx('teams').where({ id: hold.teamId }).update({
          balance_micro: tx.raw('balance_micro - ?', [cost]),
          held_micro: tx.raw('held_micro - ?', [hold.amountMicro]),
        });
        entries.push({ ...base, account: 'team', teamId: hold.teamId, amountMicro: -cost });
      } else {
        await tx('personal_balances').where({ user_id: hold.userId }).update({
          included_used_micro: tx.raw('included_used_micro + ?', [split.includedMicro]),
          prepaid_micro: tx.raw('prepaid_micro - ?', [split.prepaidMicro]),
          overage_used_micro: tx.raw('overage_used_micro + ?', [split.overageMicro]),
          held_micro: tx.raw('held_micro - ?', [hold.amountMicro]),
          updated_at: now,
        });
        entries.push(
          { ...base, account: 'user_included', userId: hold.userId, amountMicro: -split.includedMicro, periodStart },
          { ...base, account: 'user_prepaid', userId: hold.userId, amountMicro: -split.prepaidMicro },
          { ...base, account: 'user_overage', userId: hold.userId, amountMicro: -split.overageMicro, periodStart },
        );
      }
      await appendLedger(tx, entries, now);
      return { applied: true, costMicro: cost };
    });
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

  private async lockPayer(tx: Tx, key: ApiKey, now: Date): Promise<{ available: Micro; held: Micro; emptyMessage: string }> {
    if (key.teamId) {
      const team = await tx('teams').where({ id: key.teamId }).forUpdate().first('balance_micro', 'held_micro');
      return {
        available: toMicro(team?.balance_micro),
        held: toMicro(team?.held_micro),
        emptyMessage: 'The team balance is used up. Ask an installation admin to top it up.',
      };
    }
    const { buckets, held } = await this.lockPersonal(tx, key.ownerId, now);
    return {
      available: personalAvailable(buckets),
      held,
      emptyMessage: 'Your plan’s included usage and prepaid balance are used up. Ask an installation admin for a top-up or a plan with overage.',
    };
  }

  /** Locks the user's balance row, rolling its period over first when a month boundary has passed. */
  private async lockPersonal(tx: Tx, userId: string, now: Date): Promise<{ buckets: PersonalBuckets; held: Micro; periodStart: Date }> {
    // Lock only the balance row: a FOR UPDATE over a join would also lock the shared plan row and serialise
    // every user of that plan. The plan is read without a lock; a concurrent plan change applies from the next request.
    const balance = await tx('personal_balances').where({ user_id: userId }).forUpdate().first();
    const plan = await tx('users as u')
      .join('plans as p', 'p.id', 'u.plan_id')
      .where('u.id', userId)
      .first('u.plan_id', 'p.included_micro', 'p.overage_allowed', 'p.overage_cap_micro');
    const row = balance && plan ? { ...balance, ...plan } : undefined;
    if (!row) throw new Error(`personal balance missing for user ${userId}`);
    const period = billingPeriodAt(now, this.deps.timeZone);
    const current = await rollPersonalPeriodIfDue(tx, row, period, now);
    return {
      buckets: {
        includedMicro: toMicro(row.included_micro),
        includedUsedMicro: current.includedUsedMicro,
        prepaidMicro: toMicro(row.prepaid_micro),
        overageUsedMicro: current.overageUsedMicro,
        overageAllowed: toBool(row.overage_allowed),
        overageCapMicro: toMicroOrNull(row.overage_cap_micro),
      },
      held: toMicro(row.held_micro),
      periodStart: period.start,
    };
  }
}

function refuseUnusable(status: KeyStatus, ownerDisabled: boolean): void {
  if (status === 'revoked') throw new MeteringRefusal('key_revoked', 'This API key has been revoked.');
  if (status === 'expired') throw new MeteringRefusal('key_expired', 'This API key has expired.');
  if (ownerDisabled) throw new MeteringRefusal('invalid_api_key', 'The account that owns this API key is disabled.');
}

function limitReached(key: ApiKey): MeteringRefusal {
  return new MeteringRefusal(
    'spend_limit_reached',
    `This API key has reached its spending limit (spent ${fmt(key.spendMicro)} of ${fmt(key.spendLimitMicro ?? 0)} AUD). ` +
      'Raise or remove the limit in the ModelBridge portal or with keys.update to continue.',
    { spentMicro: key.spendMicro, limitMicro: key.spendLimitMicro },
  );
}

function fmt(micro: Micro): string {
  return (micro / 1_000_000).toFixed(6).replace(/0+$/, '').replace(/\.$/, '');
}

/**
 * The hold to place against a room (limit or balance) that already carries `held` for other requests, or null to
 * refuse as pending. See admit() for why a capped hold needs the room to itself.
 */
function reserve(estimate: Micro, room: Micro, held: Micro): Micro | null {
  const free = room - held;
  if (estimate <= free) return Math.max(estimate, 0);
  if (held === 0 && room > 0) return room;
  return null;
}

