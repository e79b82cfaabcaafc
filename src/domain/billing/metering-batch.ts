import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import { toBool, toDate, toDateOrNull } from '../../db/rows.js';
import { caseOf, placeholders, twoPhaseTransaction, type Row, type Stmt } from '../../db/two-phase.js';
import { effectiveStatus, type KeyStatus } from '../keys/key.js';
import { microToAud, toMicro, toMicroOrNull, type Micro } from '../money.js';
import { personalAvailable, splitPersonalDebit, type PersonalBuckets } from './debit-order.js';
import type { Period } from './period.js';
import { countersInPeriod } from './rollover.js';
import { MeteringRefusal, refuseUnusableKey } from './refusal.js';
import type { AdmissionRequest, Hold, Settlement, SettleResult } from './metering.service.js';

/**
 * Admission and settlement of MANY requests in one transaction each (see MicroBatcher): the same rules as one at a
 * time, applied item by item, in arrival order, to the locked rows held in memory — so a batch admits and charges
 * exactly what the same requests one after another would, while the database sees two round trips per batch.
 *
 * Lock order (as everywhere): keys → personal balances → teams → holds, each sorted by id, so concurrent batches
 * (of this instance or others) queue behind each other instead of deadlocking.
 */

const PENDING_RETRY_AFTER_SECONDS = 2;

interface KeyState {
  id: string;
  ownerId: string;
  teamId: string | null;
  status: KeyStatus;
  storedStatus: KeyStatus;
  spend: Micro;
  held: Micro;
  limit: Micro | null;
  requestCount: number;
}

interface PersonalState {
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
  id: string;
  balance: Micro;
  held: Micro;
}

function lock(sql: string): string {
  return `${sql} FOR UPDATE`;
}

/** The locked reads of a batch, and where each result set lands (statements with nothing to read are left out). */
function keyReads(keyIds: string[], userIds: string[], teamIds: string[]): { reads: Stmt[]; at: { keys: number; balances: number; teams: number } } {
  const reads: Stmt[] = [
    { sql: lock(`SELECT id, owner_id, team_id, status, spend_micro, held_micro, spend_limit_micro, request_count, expires_at, retire_at FROM api_keys WHERE id IN (${placeholders(keyIds.length)}) ORDER BY id`), bindings: keyIds },
  ];
  const at = { keys: 0, balances: -1, teams: -1 };
  if (userIds.length) {
    // The plan comes along in scalar subqueries: a locking read does not lock the rows of a nested subquery
    // (MySQL and MariaDB), so the shared plan row stays unlocked — locking it would serialise every user of the
    // plan — while the balance row is locked, in one statement.
    const plan = (column: string) => `(SELECT p.${column} FROM users u JOIN plans p ON p.id = u.plan_id WHERE u.id = b.user_id) AS ${column}`;
    at.balances = reads.push({
      sql: lock(`SELECT b.user_id, b.included_used_micro, b.prepaid_micro, b.overage_used_micro, b.held_micro, b.period_start, ${plan('included_micro')}, ${plan('overage_allowed')}, ${plan('overage_cap_micro')} FROM personal_balances b WHERE b.user_id IN (${placeholders(userIds.length)}) ORDER BY b.user_id`),
      bindings: userIds,
    }) - 1;
  }
  if (teamIds.length) {
    at.teams = reads.push({ sql: lock(`SELECT id, balance_micro, held_micro FROM teams WHERE id IN (${placeholders(teamIds.length)}) ORDER BY id`), bindings: teamIds }) - 1;
  }
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
      id: r.id as string,
      ownerId: r.owner_id as string,
      teamId: (r.team_id as string | null) ?? null,
      storedStatus: stored,
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
  return new Map(rows.map((r) => [r.id as string, { id: r.id as string, balance: toMicro(r.balance_micro), held: toMicro(r.held_micro) }]));
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

export async function admitBatch(
  db: Db,
  items: AdmissionItem[],
  ctx: { now: Date; period: Period; holdTtlMs: number },
): Promise<Array<Hold | Error>> {
  const keyIds = sorted(items.map((i) => i.keyId));
  const userIds = sorted(items.filter((i) => !i.teamId).map((i) => i.ownerId));
  const teamIds = sorted(items.flatMap((i) => (i.teamId ? [i.teamId] : [])));
  const { reads, at } = keyReads(keyIds, userIds, teamIds);
  return twoPhaseTransaction(db, reads, (sets) => {
    const keys = keyStates(setAt(sets, at.keys), ctx.now);
    const people = personalStates(setAt(sets, at.balances), ctx.period);
    const teams = teamStates(setAt(sets, at.teams));
    const results: Array<Hold | Error> = [];
    const holds: Hold[] = [];
    for (const item of items) {
      const key = keys.get(item.keyId);
      try {
        if (!key || key.ownerId !== item.ownerId || key.teamId !== item.teamId) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
        const amount = admitOne(item, key, key.teamId ? teams.get(key.teamId) : people.get(key.ownerId));
        const hold: Hold = {
          requestId: item.requestId, keyId: key.id, userId: key.ownerId, teamId: key.teamId, amountMicro: amount,
          model: item.model, provider: item.provider, endpoint: item.endpoint, streamed: item.streamed, createdAt: ctx.now,
        };
        holds.push(hold);
        results.push(hold);
      } catch (err) {
        results.push(err as Error);
      }
    }
    return { writes: holds.length ? admissionWrites(holds, keys, people, teams, ctx) : [], value: results };
  });
}

function admitOne(item: AdmissionItem, key: KeyState, payer: PersonalState | TeamState | undefined): Micro {
  refuseUnusableKey(key.status);
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

function admissionWrites(holds: Hold[], keys: Map<string, KeyState>, people: Map<string, PersonalState>, teams: Map<string, TeamState>, ctx: { now: Date; holdTtlMs: number }): Stmt[] {
  const writes: Stmt[] = [];
  const touchedKeys = new Map(holds.map((h) => [h.keyId, keys.get(h.keyId)!.held]));
  writes.push(updateColumn('api_keys', 'id', 'held_micro', touchedKeys));
  const personal = new Map(holds.filter((h) => !h.teamId).map((h) => [h.userId, people.get(h.userId)!.held]));
  if (personal.size) writes.push(updateColumn('personal_balances', 'user_id', 'held_micro', personal));
  const team = new Map(holds.filter((h) => h.teamId).map((h) => [h.teamId!, teams.get(h.teamId!)!.held]));
  if (team.size) writes.push(updateColumn('teams', 'id', 'held_micro', team));
  const deadline = new Date(ctx.now.getTime() + ctx.holdTtlMs);
  writes.push({
    sql: `INSERT INTO holds (request_id, key_id, user_id, team_id, amount_micro, model, provider, endpoint, streamed, created_at, deadline_at) VALUES ${holds.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    bindings: holds.flatMap((h) => [h.requestId, h.keyId, h.userId, h.teamId, h.amountMicro, h.model, h.provider, h.endpoint, h.streamed, ctx.now, deadline]),
  });
  return writes;
}

function updateColumn(table: string, idColumn: string, column: string, values: Map<string, unknown>): Stmt {
  const c = caseOf(idColumn, column, values);
  return { sql: `UPDATE ${table} SET ${column} = ${c.sql} WHERE ${idColumn} IN (${placeholders(values.size)})`, bindings: [...c.bindings, ...values.keys()] };
}

function limitReached(key: KeyState): MeteringRefusal {
  return new MeteringRefusal(
    'spend_limit_reached',
    `This API key has reached its spending limit (spent ${microToAud(key.spend)} of ${microToAud(key.limit ?? 0)} AUD). ` +
      'Raise or remove the limit in the ModelBridge portal or with keys.update to continue.',
    { spentMicro: key.spend, limitMicro: key.limit },
  );
}

export interface SettlementItem {
  hold: Hold;
  settlement: Settlement;
}

/**
 * Settles a batch: the hold rows (locked) decide what is still unsettled — a request id whose hold is gone was
 * settled or released already and changes nothing (idempotency, also across instances and the release job).
 */
export async function settleBatch(db: Db, items: SettlementItem[], ctx: { now: Date; period: Period }): Promise<SettleResult[]> {
  const keyIds = sorted(items.map((i) => i.hold.keyId));
  const userIds = sorted(items.filter((i) => !i.hold.teamId).map((i) => i.hold.userId));
  const teamIds = sorted(items.flatMap((i) => (i.hold.teamId ? [i.hold.teamId] : [])));
  const requestIds = sorted(items.map((i) => i.hold.requestId));
  const { reads, at } = keyReads(keyIds, userIds, teamIds);
  const holdsAt = reads.push(
    { sql: lock(`SELECT request_id, key_id, user_id, team_id, amount_micro, model, provider, endpoint, streamed, created_at FROM holds WHERE request_id IN (${placeholders(requestIds.length)}) ORDER BY request_id`), bindings: requestIds },
  ) - 1;
  return twoPhaseTransaction(db, reads, (sets) => {
    const keys = keyStates(setAt(sets, at.keys), ctx.now);
    const people = personalStates(setAt(sets, at.balances), ctx.period);
    const teams = teamStates(setAt(sets, at.teams));
    const holdRows = setAt(sets, holdsAt);
    const stale = [...people.values()].filter((p) => p.stale).map((p) => p.userId);
    if (stale.length) throw new PeriodRolloverDue(stale);
    const open = new Map(holdRows.map((h) => [h.request_id as string, h]));
    const events: Knex.RawBinding[][] = [];
    const ledger: Knex.RawBinding[][] = [];
    const results: SettleResult[] = [];
    for (const { hold, settlement: s } of items) {
      const row = open.get(hold.requestId);
      const key = keys.get(hold.keyId);
      if (!row || !key) {
        results.push({ applied: false, costMicro: 0 });
        continue;
      }
      open.delete(hold.requestId); // the same request twice in one batch: the second is a replay
      const amount = toMicro(row.amount_micro);
      const teamId = (row.team_id as string | null) ?? null;
      const userId = row.user_id as string;
      const cost = s.costMicro;
      key.spend += cost;
      key.held -= amount;
      key.requestCount += 1;
      if (key.storedStatus === 'active' && key.limit !== null && key.spend >= key.limit) key.storedStatus = 'limit_reached';
      let split = { includedMicro: 0, prepaidMicro: 0, overageMicro: 0 };
      const base = { key: hold.keyId, requestId: hold.requestId };
      if (teamId) {
        const team = teams.get(teamId)!;
        team.balance -= cost;
        team.held -= amount;
        ledger.push(ledgerRow('team', null, teamId, base, -cost, null, ctx.now));
      } else {
        const person = people.get(userId)!;
        split = splitPersonalDebit(cost, person.buckets);
        person.buckets.includedUsedMicro += split.includedMicro;
        person.buckets.prepaidMicro -= split.prepaidMicro;
        person.buckets.overageUsedMicro += split.overageMicro;
        person.held -= amount;
        ledger.push(
          ledgerRow('user_included', userId, null, base, -split.includedMicro, ctx.period.start, ctx.now),
          ledgerRow('user_prepaid', userId, null, base, -split.prepaidMicro, null, ctx.now),
          ledgerRow('user_overage', userId, null, base, -split.overageMicro, ctx.period.start, ctx.now),
        );
      }
      events.push([
        hold.requestId, hold.keyId, userId, teamId, row.model as string, row.provider as string, row.endpoint as string, s.inputTokens, s.outputTokens,
        cost, split.includedMicro, split.prepaidMicro, split.overageMicro, teamId ? cost : 0, s.outcome, s.estimated,
        s.httpStatus, Math.max(0, Math.round(s.latencyMs)), toBool(row.streamed), toDate(row.created_at), ctx.now,
      ]);
      results.push({ applied: true, costMicro: cost });
    }
    return { writes: events.length ? settlementWrites(items, results, keys, people, teams, events, ledger.filter((l) => l[4] !== 0), ctx) : [], value: results };
  });
}

function ledgerRow(account: string, userId: string | null, teamId: string | null, base: { key: string; requestId: string }, amount: Micro, periodStart: Date | null, now: Date): Knex.RawBinding[] {
  return [account, userId, teamId, base.key, amount, 'usage', base.requestId, periodStart, now];
}

function settlementWrites(
  items: SettlementItem[],
  results: SettleResult[],
  keys: Map<string, KeyState>,
  people: Map<string, PersonalState>,
  teams: Map<string, TeamState>,
  events: Knex.RawBinding[][],
  ledger: Knex.RawBinding[][],
  ctx: { now: Date },
): Stmt[] {
  const applied = items.filter((_, i) => results[i]!.applied).map((i) => i.hold);
  const requestIds = applied.map((h) => h.requestId);
  const keyIds = sorted(applied.map((h) => h.keyId));
  const pick = <T>(ids: string[], f: (id: string) => T) => new Map(ids.map((id) => [id, f(id)]));
  const keyCase = (column: string, f: (k: KeyState) => unknown) => caseOf('id', column, pick(keyIds, (id) => f(keys.get(id)!)));
  const spend = keyCase('spend_micro', (k) => k.spend);
  const held = keyCase('held_micro', (k) => k.held);
  const count = keyCase('request_count', (k) => k.requestCount);
  const status = keyCase('status', (k) => k.storedStatus);
  const writes: Stmt[] = [
    { sql: `DELETE FROM holds WHERE request_id IN (${placeholders(requestIds.length)})`, bindings: requestIds },
    {
      sql: `INSERT INTO usage_events (request_id, key_id, user_id, team_id, model, provider, endpoint, input_tokens, output_tokens, cost_micro, included_micro, prepaid_micro, overage_micro, team_micro, outcome, estimated, http_status, latency_ms, streamed, started_at, created_at) VALUES ${events.map(() => `(${placeholders(21)})`).join(', ')}`,
      bindings: events.flat(),
    },
    {
      sql: `UPDATE api_keys SET spend_micro = ${spend.sql}, held_micro = ${held.sql}, request_count = ${count.sql}, status = ${status.sql}, last_used_at = ? WHERE id IN (${placeholders(keyIds.length)})`,
      bindings: [...spend.bindings, ...held.bindings, ...count.bindings, ...status.bindings, ctx.now, ...keyIds],
    },
  ];
  const userIds = sorted(applied.filter((h) => !h.teamId).map((h) => h.userId));
  if (userIds.length) {
    const personCase = (column: string, f: (p: PersonalState) => unknown) => caseOf('user_id', column, pick(userIds, (id) => f(people.get(id)!)));
    const cols = [
      ['included_used_micro', personCase('included_used_micro', (p) => p.buckets.includedUsedMicro)],
      ['prepaid_micro', personCase('prepaid_micro', (p) => p.buckets.prepaidMicro)],
      ['overage_used_micro', personCase('overage_used_micro', (p) => p.buckets.overageUsedMicro)],
      ['held_micro', personCase('held_micro', (p) => p.held)],
    ] as const;
    writes.push({
      sql: `UPDATE personal_balances SET ${cols.map(([c, s]) => `${c} = ${s.sql}`).join(', ')}, updated_at = ? WHERE user_id IN (${placeholders(userIds.length)})`,
      bindings: [...cols.flatMap(([, s]) => s.bindings), ctx.now, ...userIds],
    });
  }
  const teamIds = sorted(applied.flatMap((h) => (h.teamId ? [h.teamId] : [])));
  if (teamIds.length) {
    const balance = caseOf('id', 'balance_micro', pick(teamIds, (id) => teams.get(id)!.balance));
    const teamHeld = caseOf('id', 'held_micro', pick(teamIds, (id) => teams.get(id)!.held));
    writes.push({
      sql: `UPDATE teams SET balance_micro = ${balance.sql}, held_micro = ${teamHeld.sql} WHERE id IN (${placeholders(teamIds.length)})`,
      bindings: [...balance.bindings, ...teamHeld.bindings, ...teamIds],
    });
  }
  if (ledger.length)
    writes.push({
      sql: `INSERT INTO ledger_entries (account, user_id, team_id, key_id, amount_micro, kind, request_id, period_start, created_at) VALUES ${ledger.map(() => `(${placeholders(9)})`).join(', ')}`,
      bindings: ledger.flat(),
    });
  return writes;
}

