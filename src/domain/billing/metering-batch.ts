import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import { toBool, toDate, toDateOrNull } from '../../db/rows.js';
import { caseOf, deleteWhere, idIn, insertRows, lockedTransaction, updateWhere, type LockedRead, type Row, type Stmt } from '../../db/locked-transaction.js';
import type { RowCache } from '../../db/row-cache.js';
import { effectiveStatus, type KeyStatus } from '../keys/key.js';
import { microToAud, toMicro, toMicroOrNull, type Micro } from '../money.js';
import { personalAvailable, splitPersonalDebit, type PersonalBuckets } from './debit-order.js';
import type { Period } from './period.js';
import { countersInPeriod } from './rollover.js';
import { MeteringRefusal, refuseUnusableKey } from './refusal.js';
import { CatalogEntryChanged, modelFromRow, sameCatalogEntry } from '../models/models.service.js';
import type { AdmissionRequest, Hold, SettlementItem, SettleResult } from './metering.service.js';

/**
 * Admissions and settlements of MANY requests in one transaction (see MicroBatcher): the same rules as one at a
 * time, applied item by item to the locked rows held in memory — the batch's settlements first (they release holds
 * and so free headroom), then its admissions, each kind in arrival order. A batch admits and charges exactly what
 * the same requests one after another in that order would, with one commit for all of them.
 *
 * Lock order (as everywhere): keys → personal balances → teams → holds, each sorted by id, so concurrent batches
 * (of this instance or others) queue behind each other instead of deadlocking.
 *
 * After each batch the rows as written are remembered (RowCache): the next batch on the same rows plans from them
 * and locks, checks and writes in one round trip (lockedTransaction), falling back to read-then-write when another
 * writer changed a row meanwhile.
 */

const PENDING_RETRY_AFTER_SECONDS = 2;

interface KeyState {
  /** The row as read (or guessed): the base of its image after the writes. */
  row: Row;
  /** Settled in this batch: spend, count, status and last use are written, not just held. */
  charged: boolean;
  id: string;
  ownerId: string;
  teamId: string | null;
  status: KeyStatus;
  storedStatus: KeyStatus;
  ownerDisabled: boolean;
  spend: Micro;
  held: Micro;
  limit: Micro | null;
  requestCount: number;
}

interface PersonalState {
  row: Row;
  /** Charged in this batch: the counters are written, not just held (see batchWrites). */
  charged: boolean;
  userId: string;
  buckets: PersonalBuckets;
  held: Micro;
  /** Stored counters belong to an earlier billing period (the roll-over has not run for this user yet). */
  stale: boolean;
}

/** Thrown by settleBatch (rolling the whole batch back) when payers must be rolled into the new period first. */
export class PeriodRolloverDue extends Error {
  constructor(readonly userIds: string[]) {
    super('billing period roll-over due');
  }
}

interface TeamState {
  row: Row;
  charged: boolean;
  id: string;
  balance: Micro;
  held: Micro;
}

const columns = (...names: string[]): Array<[string, string]> => names.map((n) => [n, n]);

const KEYS: Omit<LockedRead, 'ids'> = {
  from: 'api_keys', id: 'id', idColumn: 'id',
  columns: [
    ...columns('id', 'owner_id', 'team_id', 'status', 'spend_micro', 'held_micro', 'spend_limit_micro', 'request_count', 'expires_at', 'retire_at'),
    ['owner_disabled', '(SELECT u.disabled FROM users u WHERE u.id = api_keys.owner_id)'],
  ],
};
// The plan comes along in scalar subqueries: a locking read does not lock the rows of a nested subquery (MySQL and
// MariaDB), so the shared plan row stays unlocked — locking it would serialise every user of the plan — while the
// balance row is locked, in one statement.
const plan = (column: string): [string, string] => [column, `(SELECT p.${column} FROM users u JOIN plans p ON p.id = u.plan_id WHERE u.id = b.user_id)`];
const BALANCES: Omit<LockedRead, 'ids'> = {
  from: 'personal_balances b', id: 'b.user_id', idColumn: 'user_id',
  columns: [
    ...(['user_id', 'included_used_micro', 'prepaid_micro', 'overage_used_micro', 'held_micro', 'period_start'] as const).map((c): [string, string] => [c, `b.${c}`]),
    plan('included_micro'), plan('overage_allowed'), plan('overage_cap_micro'),
  ],
};
const TEAMS: Omit<LockedRead, 'ids'> = { from: 'teams', id: 'id', idColumn: 'id', columns: columns('id', 'balance_micro', 'held_micro') };
// The catalog entries admissions were estimated from, read without a lock (every request of a model reads its row).
const MODELS: Omit<LockedRead, 'ids'> = {
  from: 'models', id: 'id', idColumn: 'id', lock: false,
  columns: columns('id', 'provider', 'upstream_model', 'input_micro_per_mtok', 'output_micro_per_mtok', 'max_output_tokens', 'enabled'),
};
const HOLDS: Omit<LockedRead, 'ids'> = {
  from: 'holds', id: 'request_id', idColumn: 'request_id',
  columns: columns('request_id', 'key_id', 'user_id', 'team_id', 'amount_micro', 'model', 'provider', 'endpoint', 'streamed', 'created_at'),
};

/** The locked reads of a batch, and where each result set lands (reads with no ids are left out). */
function batchReads(ids: { keys: string[]; users: string[]; teams: string[]; requests: string[]; models: string[] }) {
  const reads: LockedRead[] = [{ ...KEYS, ids: ids.keys }];
  const at = { keys: 0, balances: -1, teams: -1, holds: -1, models: -1 };
  if (ids.users.length) at.balances = reads.push({ ...BALANCES, ids: ids.users }) - 1;
  if (ids.teams.length) at.teams = reads.push({ ...TEAMS, ids: ids.teams }) - 1;
  if (ids.requests.length) at.holds = reads.push({ ...HOLDS, ids: ids.requests }) - 1;
  if (ids.models.length) at.models = reads.push({ ...MODELS, ids: ids.models }) - 1;
  return { reads, at };
}

/** The result set at a position, or none when the statement was left out. */
function setAt(sets: Row[][], index: number): Row[] {
  return index < 0 ? [] : sets[index]!;
}

function keyStates(rows: Row[], now: Date): Map<string, KeyState> {
  const out = new Map<string, KeyState>();
  for (const r of rows) {
    const stored = r.status as KeyStatus;
    out.set(r.id as string, {
      row: r,
      charged: false,
      id: r.id as string,
      ownerId: r.owner_id as string,
      teamId: (r.team_id as string | null) ?? null,
      storedStatus: stored,
      ownerDisabled: toBool(r.owner_disabled),
      status: effectiveStatus(stored, toDateOrNull(r.expires_at), toDateOrNull(r.retire_at), now),
      spend: toMicro(r.spend_micro),
      held: toMicro(r.held_micro),
      limit: toMicroOrNull(r.spend_limit_micro),
      requestCount: Number(r.request_count),
    });
  }
  return out;
}

/**
 * Personal balances as of the current period: counters stored for an earlier period count as zero (the roll-over,
 * which writes the statement, happens before settlement; admission only needs the right headroom).
 */
function personalStates(balances: Row[], period: Period): Map<string, PersonalState> {
  const out = new Map<string, PersonalState>();
  for (const b of balances) {
    const userId = b.user_id as string;
    const { includedUsedMicro, overageUsedMicro, stale } = countersInPeriod(b, period);
    out.set(userId, {
      row: b,
      charged: false,
      userId,
      stale,
      held: toMicro(b.held_micro),
      buckets: {
        includedMicro: toMicro(b.included_micro),
        includedUsedMicro,
        prepaidMicro: toMicro(b.prepaid_micro),
        overageUsedMicro,
        overageAllowed: toBool(b.overage_allowed),
        overageCapMicro: toMicroOrNull(b.overage_cap_micro),
      },
    });
  }
  return out;
}

function teamStates(rows: Row[]): Map<string, TeamState> {
  return new Map(rows.map((r) => [r.id as string, { row: r, charged: false, id: r.id as string, balance: toMicro(r.balance_micro), held: toMicro(r.held_micro) }]));
}

function sorted(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort();
}

/** The hold against a room that already carries `held` for other requests, or null (pending). See admit(). */
function reserve(estimate: Micro, room: Micro, held: Micro): Micro | null {
  const free = room - held;
  if (estimate <= free) return Math.max(estimate, 0);
  if (held === 0 && room > 0) return room;
  return null;
}

export interface AdmissionItem extends AdmissionRequest {
  /** From authentication: who pays. Re-checked against the locked key row. */
  ownerId: string;
  teamId: string | null;
}

export type MeteringOp = { admit: AdmissionItem } | { settle: SettlementItem };

/** A batch's results, one per op, and whether its transaction took one round trip (planned from remembered rows). */
export interface Batched {
  results: Array<Hold | SettleResult | Error>;
  guessed: boolean;
}

/** What a batch works with besides the database: the clock's now, the current period, the row cache. */
export interface BatchContext {
  now: Date;
  period: Period;
  holdTtlMs: number;
  cache: RowCache;
}

interface BatchState {
  models: Map<string, Row>;
  keys: Map<string, KeyState>;
  people: Map<string, PersonalState>;
  teams: Map<string, TeamState>;
  admitted: Hold[];
  settled: Hold[];
  events: Knex.RawBinding[][];
  ledger: Knex.RawBinding[][];
}

/**
 * Admits and settles a batch in one transaction. Settlement is idempotent on the request id: the locked hold rows
 * decide what is still unsettled — a request whose hold is gone was settled or released already and changes nothing
 * (also across instances and the release job). Throws PeriodRolloverDue (nothing written) when a payer to be charged
 * is still in an ended billing period.
 */
export async function meterBatch(db: Db, ops: MeteringOp[], ctx: BatchContext): Promise<Batched> {
  const admits = ops.flatMap((op) => ('admit' in op ? [op.admit] : []));
  const settles = ops.flatMap((op) => ('settle' in op ? [op.settle.hold] : []));
  const keyIds = sorted([...admits.map((a) => a.keyId), ...settles.map((h) => h.keyId)]);
  const userIds = sorted([...admits.filter((a) => !a.teamId).map((a) => a.ownerId), ...settles.filter((h) => !h.teamId).map((h) => h.userId)]);
  const teamIds = sorted([...admits, ...settles].flatMap((x) => (x.teamId ? [x.teamId] : [])));
  const requestIds = sorted(settles.map((h) => h.requestId));
  const modelIds = sorted(admits.flatMap((a) => (a.catalog ? [a.catalog.id] : [])));
  const { reads, at } = batchReads({ keys: keyIds, users: userIds, teams: teamIds, requests: requestIds, models: modelIds });
  let state: BatchState | undefined;
  let outcome: { value: Batched['results']; guessed: boolean };
  try {
    outcome = await lockedTransaction(db, reads, (sets) => {
      const s: BatchState = {
        keys: keyStates(setAt(sets, at.keys), ctx.now),
        people: personalStates(setAt(sets, at.balances), ctx.period),
        teams: teamStates(setAt(sets, at.teams)),
        models: new Map(setAt(sets, at.models).map((m) => [m.id as string, m])),
        admitted: [], settled: [], events: [], ledger: [],
      };
      const stale = sorted(settles.filter((h) => !h.teamId && s.people.get(h.userId)?.stale).map((h) => h.userId));
      if (stale.length) throw new PeriodRolloverDue(stale);
      const open = new Map(setAt(sets, at.holds).map((h) => [h.request_id as string, h]));
      const results: Batched['results'] = new Array(ops.length);
      // Settlements first: the holds they release are headroom for this batch's admissions.
      ops.forEach((op, i) => {
        if ('settle' in op) results[i] = settleOne(op.settle, open, s, ctx);
      });
      ops.forEach((op, i) => {
        if ('admit' in op) results[i] = admitOne(op.admit, s, ctx.now);
      });
      state = s;
      return { writes: batchWrites(s, ctx), value: results };
    }, ctx.cache.guess(reads));
  } catch (err) {
    // Nothing was written, but what these rows now hold is unknown.
    ctx.cache.forget(reads);
    throw err;
  }
  remember(ctx.cache, state!);
  return { results: outcome.value, guessed: outcome.guessed };
}

function admitOne(item: AdmissionItem, s: BatchState, now: Date): Hold | Error {
  const key = s.keys.get(item.keyId);
  try {
    if (!key || key.ownerId !== item.ownerId || key.teamId !== item.teamId) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
    if (item.catalog) {
      const row = s.models.get(item.catalog.id);
      if (!row || !sameCatalogEntry(modelFromRow(row), item.catalog)) throw new CatalogEntryChanged(item.catalog.id);
    }
    const amount = reserveHold(item, key, key.teamId ? s.teams.get(key.teamId) : s.people.get(key.ownerId));
    const hold: Hold = {
      requestId: item.requestId, keyId: key.id, userId: key.ownerId, teamId: key.teamId, amountMicro: amount,
      model: item.model, provider: item.provider, endpoint: item.endpoint, streamed: item.streamed, createdAt: now,
    };
    s.admitted.push(hold);
    return hold;
  } catch (err) {
    return err as Error;
  }
}

function reserveHold(item: AdmissionItem, key: KeyState, payer: PersonalState | TeamState | undefined): Micro {
  refuseUnusableKey(key.status, key.ownerDisabled);
  const keyRoom = key.limit === null ? Number.MAX_SAFE_INTEGER : key.limit - key.spend;
  if (key.status === 'limit_reached' || keyRoom <= 0) throw limitReached(key);
  const keyHold = reserve(item.estimateMicro, keyRoom, key.held);
  if (keyHold === null)
    throw new MeteringRefusal('spend_limit_pending', 'Requests in flight have reserved the rest of this key’s spending limit; retry shortly.', {
      spentMicro: key.spend, limitMicro: key.limit, retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
    });
  if (!payer) throw new Error(`payer of key ${key.id} not found`);
  const available = 'buckets' in payer ? personalAvailable(payer.buckets) : payer.balance;
  if (available <= 0)
    throw new MeteringRefusal('insufficient_balance', 'buckets' in payer
      ? 'Your plan’s included usage and prepaid balance are used up. Ask an installation admin for a top-up or a plan with overage.'
      : 'The team balance is used up. Ask an installation admin to top it up.');
  const payerHold = reserve(item.estimateMicro, available, payer.held);
  if (payerHold === null)
    throw new MeteringRefusal('spend_limit_pending', 'Requests in flight have reserved the rest of the balance; retry shortly.', {
      retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
    });
  const amount = Math.min(keyHold, payerHold);
  key.held += amount;
  payer.held += amount;
  return amount;
}

function limitReached(key: KeyState): MeteringRefusal {
  return new MeteringRefusal(
    'spend_limit_reached',
    `This API key has reached its spending limit (spent ${microToAud(key.spend)} of ${microToAud(key.limit ?? 0)} AUD). ` +
      'Raise or remove the limit in the ModelBridge portal or with keys.update to continue.',
    { spentMicro: key.spend, limitMicro: key.limit },
  );
}

function settleOne({ hold, settlement: st }: SettlementItem, open: Map<string, Row>, s: BatchState, ctx: BatchContext): SettleResult {
  const row = open.get(hold.requestId);
  const key = s.keys.get(hold.keyId);
  if (!row || !key) return { applied: false, costMicro: 0 };
  open.delete(hold.requestId); // the same request twice in one batch: the second is a replay
  const amount = toMicro(row.amount_micro);
  const teamId = (row.team_id as string | null) ?? null;
  const userId = row.user_id as string;
  const cost = st.costMicro;
  key.spend += cost;
  key.held -= amount;
  key.requestCount += 1;
  key.charged = true;
  if (key.storedStatus === 'active' && key.limit !== null && key.spend >= key.limit) key.storedStatus = 'limit_reached';
  let split = { includedMicro: 0, prepaidMicro: 0, overageMicro: 0 };
  const base = { key: hold.keyId, requestId: hold.requestId };
  if (teamId) {
    const team = s.teams.get(teamId)!;
    team.balance -= cost;
    team.held -= amount;
    team.charged = true;
    s.ledger.push(ledgerRow('team', null, teamId, base, -cost, null, ctx.now));
  } else {
    const person = s.people.get(userId)!;
    split = splitPersonalDebit(cost, person.buckets);
    person.buckets.includedUsedMicro += split.includedMicro;
    person.buckets.prepaidMicro -= split.prepaidMicro;
    person.buckets.overageUsedMicro += split.overageMicro;
    person.held -= amount;
    person.charged = true;
    s.ledger.push(
      ledgerRow('user_included', userId, null, base, -split.includedMicro, ctx.period.start, ctx.now),
      ledgerRow('user_prepaid', userId, null, base, -split.prepaidMicro, null, ctx.now),
      ledgerRow('user_overage', userId, null, base, -split.overageMicro, ctx.period.start, ctx.now),
    );
  }
  s.events.push([
    hold.requestId, hold.keyId, userId, teamId, row.model as string, row.provider as string, row.endpoint as string, st.inputTokens, st.outputTokens,
    cost, split.includedMicro, split.prepaidMicro, split.overageMicro, teamId ? cost : 0, st.outcome, st.estimated,
    st.httpStatus, Math.max(0, Math.round(st.latencyMs)), toBool(row.streamed), toDate(row.created_at), ctx.now,
  ]);
  s.settled.push(hold);
  return { applied: true, costMicro: cost };
}

const USAGE_EVENT_COLUMNS = [
  'request_id', 'key_id', 'user_id', 'team_id', 'model', 'provider', 'endpoint', 'input_tokens', 'output_tokens', 'cost_micro', 'included_micro',
  'prepaid_micro', 'overage_micro', 'team_micro', 'outcome', 'estimated', 'http_status', 'latency_ms', 'streamed', 'started_at', 'created_at',
];
const LEDGER_COLUMNS = ['account', 'user_id', 'team_id', 'key_id', 'amount_micro', 'kind', 'request_id', 'period_start', 'created_at'];
const HOLD_COLUMNS = ['request_id', 'key_id', 'user_id', 'team_id', 'amount_micro', 'model', 'provider', 'endpoint', 'streamed', 'created_at', 'deadline_at'];

function ledgerRow(account: string, userId: string | null, teamId: string | null, base: { key: string; requestId: string }, amount: Micro, periodStart: Date | null, now: Date): Knex.RawBinding[] {
  return [account, userId, teamId, base.key, amount, 'usage', base.requestId, periodStart, now];
}

/**
 * The batch's writes: each touched row once, with its final values. A row only admitted against gets its held
 * amount; a charged one also its counters (a personal balance admitted against in a stale period keeps its stored
 * counters: the roll-over, not admission, resets them).
 */
function batchWrites(s: BatchState, ctx: BatchContext): Stmt[] {
  const writes: Stmt[] = [];
  const touchedKeys = sorted([...s.admitted, ...s.settled].map((h) => h.keyId)).map((id) => s.keys.get(id)!);
  if (!touchedKeys.length) return writes;
  const charged = touchedKeys.filter((k) => k.charged);
  const set = (idColumn: string, column: string, rows: Array<[string, unknown]>) => {
    const c = caseOf(idColumn, column, new Map(rows));
    return { sql: `${column} = ${c.sql}`, bindings: c.bindings };
  };
  writes.push(updateWhere('api_keys', joinSets([
    set('id', 'held_micro', touchedKeys.map((k) => [k.id, k.held])),
    ...(charged.length ? [
      set('id', 'spend_micro', charged.map((k) => [k.id, k.spend])),
      set('id', 'request_count', charged.map((k) => [k.id, k.requestCount])),
      set('id', 'status', charged.map((k) => [k.id, k.storedStatus])),
      set('id', 'last_used_at', charged.map((k) => [k.id, ctx.now])),
    ] : []),
  ]), idIn('id', touchedKeys.map((k) => k.id))));

  const payers = [...s.admitted, ...s.settled];
  const people = sorted(payers.filter((h) => !h.teamId).map((h) => h.userId)).map((id) => s.people.get(id)!);
  if (people.length) {
    const paid = people.filter((p) => p.charged);
    writes.push(updateWhere('personal_balances', joinSets([
      set('user_id', 'held_micro', people.map((p) => [p.userId, p.held])),
      ...(paid.length ? [
        set('user_id', 'included_used_micro', paid.map((p) => [p.userId, p.buckets.includedUsedMicro])),
        set('user_id', 'prepaid_micro', paid.map((p) => [p.userId, p.buckets.prepaidMicro])),
        set('user_id', 'overage_used_micro', paid.map((p) => [p.userId, p.buckets.overageUsedMicro])),
        set('user_id', 'updated_at', paid.map((p) => [p.userId, ctx.now])),
      ] : []),
    ]), idIn('user_id', people.map((p) => p.userId))));
  }
  const teams = sorted(payers.flatMap((h) => (h.teamId ? [h.teamId] : []))).map((id) => s.teams.get(id)!);
  if (teams.length) {
    const paid = teams.filter((t) => t.charged);
    writes.push(updateWhere('teams', joinSets([
      set('id', 'held_micro', teams.map((t) => [t.id, t.held])),
      ...(paid.length ? [set('id', 'balance_micro', paid.map((t) => [t.id, t.balance]))] : []),
    ]), idIn('id', teams.map((t) => t.id))));
  }
  if (s.settled.length) {
    writes.push(deleteWhere('holds', idIn('request_id', s.settled.map((h) => h.requestId))));
    writes.push(insertRows('usage_events', USAGE_EVENT_COLUMNS, s.events));
  }
  const ledger = s.ledger.filter((l) => l[4] !== 0);
  if (ledger.length) writes.push(insertRows('ledger_entries', LEDGER_COLUMNS, ledger));
  if (s.admitted.length) {
    const deadline = new Date(ctx.now.getTime() + ctx.holdTtlMs);
    writes.push(insertRows('holds', HOLD_COLUMNS, s.admitted.map((h) => [h.requestId, h.keyId, h.userId, h.teamId, h.amountMicro, h.model, h.provider, h.endpoint, h.streamed, ctx.now, deadline])));
  }
  return writes;
}

function joinSets(parts: Stmt[]): Stmt {
  return { sql: parts.map((p) => p.sql).join(', '), bindings: parts.flatMap((p) => p.bindings) };
}

/** Every locked row as it is after the batch's writes, and the holds as inserted (see RowCache). */
function remember(cache: RowCache, s: BatchState): void {
  const keys = { ...KEYS, ids: [] };
  for (const k of s.keys.values())
    cache.set(keys, { ...k.row, spend_micro: k.spend, held_micro: k.held, request_count: k.requestCount, status: k.storedStatus });
  const balances = { ...BALANCES, ids: [] };
  for (const p of s.people.values())
    cache.set(balances, p.charged
      ? { ...p.row, held_micro: p.held, included_used_micro: p.buckets.includedUsedMicro, prepaid_micro: p.buckets.prepaidMicro, overage_used_micro: p.buckets.overageUsedMicro }
      : { ...p.row, held_micro: p.held });
  const teams = { ...TEAMS, ids: [] };
  for (const t of s.teams.values()) cache.set(teams, { ...t.row, balance_micro: t.balance, held_micro: t.held });
  const models = { ...MODELS, ids: [] };
  for (const m of s.models.values()) cache.set(models, m);
  const holds = { ...HOLDS, ids: [] };
  for (const h of s.settled) cache.delete(holds, h.requestId);
  for (const h of s.admitted)
    cache.set(holds, {
      request_id: h.requestId, key_id: h.keyId, user_id: h.userId, team_id: h.teamId, amount_micro: h.amountMicro, model: h.model,
      provider: h.provider, endpoint: h.endpoint, streamed: h.streamed, created_at: h.createdAt,
    });
}
