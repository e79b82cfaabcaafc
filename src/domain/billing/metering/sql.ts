import type { Knex } from 'knex';
import type { Db } from '../../../db/knex.js';
import { caseOf, deleteWhere, idIn, insertRows, lockedTransaction, lockingSelect, updateWhere, type LockedRead, type Row, type Stmt } from '../../../db/locked-transaction.js';
import type { RowCache } from '../../../db/row-cache.js';
import { toBool, toDate, toDateOrNull, toInt } from '../../../db/rows.js';
import type { KeyStatus } from '../../keys/key.js';
import { allowedModelsOf, effectiveRateLimits, parseModelList, type LimitReset } from '../../keys/controls.js';
import { modelFromRow, type CatalogModel } from '../../models/models.service.js';
import { parseThresholds } from '../alerts.js';
import { toMicro, toMicroOrNull } from '../../money.js';
import { applyChanges, idsOf, planBatch } from './planner.js';
import type { BalanceRow, HoldRow, KeyRow, MemberRow, MeteringChanges, MeteringIds, MeteringOp, MeteringRows, OpResult, PlanContext, TeamRow } from './types.js';

/**
 * The SQL side of metering: which rows a batch locks, how they become the planner's rows, how the planner's
 * changes become statements — and the rows this instance remembers for the next batch's one-round-trip guess
 * (RowCache), derived from the same changes (applyChanges), so the statements and the memory cannot drift apart.
 */

/** Thrown (nothing written) when payers to be charged are still in an ended billing period: roll them over, retry. */
export class PeriodRolloverDue extends Error {
  constructor(readonly userIds: string[]) {
    super('billing period roll-over due');
  }
}

const columns = (...names: string[]): Array<[string, string]> => names.map((n) => [n, n]);

const KEY_SETTINGS = [
  'limit_reset', 'allowed_models', 'rpm_limit', 'tpm_limit', 'max_parallel', 'alert_thresholds',
  'team_allowed_models', 'team_default_rpm_limit', 'team_default_tpm_limit', 'team_default_max_parallel',
] as const;
const KEYS: Omit<LockedRead, 'ids'> = {
  from: 'api_keys', id: 'id', idColumn: 'id',
  columns: [
    ...columns('id', 'owner_id', 'team_id', 'status', 'spend_micro', 'held_micro', 'spend_limit_micro', 'request_count', 'expires_at', 'retire_at'),
    ...columns('limit_reset', 'period_spend_micro', 'period_start', 'allowed_models', 'rpm_limit', 'tpm_limit', 'max_parallel', 'in_flight'),
    ...columns('rate_window_start', 'rate_window_requests', 'rate_window_tokens', 'alert_thresholds', 'alert_fired_pct', 'row_version'),
    ['owner_disabled', '(SELECT u.disabled FROM users u WHERE u.id = api_keys.owner_id)'],
    // The team's list and rate defaults come along unlocked, like the plan of a balance: a change to them shows in
    // the next batch (the guess no longer matches), without serialising the team's keys on the team row.
    ...(['allowed_models', 'default_rpm_limit', 'default_tpm_limit', 'default_max_parallel'] as const).map((c): [string, string] => [
      `team_${c}`, `(SELECT t.${c} FROM teams t WHERE t.id = api_keys.team_id)`,
    ]),
  ],
  // The check of a guess: the row's version alone — a change to the owner's flag or the team's settings above raises
  // it too (the propagation triggers of migration 20261207100000_add-row-versions).
  guard: ['row_version'],
};
// The plan comes along in scalar subqueries: a locking read does not lock the rows of a nested subquery (MySQL and
// MariaDB), so the shared plan row stays unlocked — locking it would serialise every user of the plan — while the
// balance row is locked, in one statement.
const plan = (column: string): [string, string] => [column, `(SELECT p.${column} FROM users u JOIN plans p ON p.id = u.plan_id WHERE u.id = b.user_id)`];
const BALANCES: Omit<LockedRead, 'ids'> = {
  from: 'personal_balances b', id: 'b.user_id', idColumn: 'user_id',
  columns: [
    ...(['user_id', 'included_used_micro', 'prepaid_micro', 'overage_used_micro', 'held_micro', 'period_start'] as const).map((c): [string, string] => [c, `b.${c}`]),
    plan('included_micro'), plan('overage_allowed'), plan('overage_cap_micro'), ['alert_fired_pct', 'b.alert_fired_pct'],
    ['user_alert_thresholds', '(SELECT u.alert_thresholds FROM users u WHERE u.id = b.user_id)'],
    ['row_version', 'b.row_version'],
  ],
  // The user's plan and thresholds and the plan's values raise the balance's version when they change (as keys).
  guard: ['row_version'],
};
const TEAMS: Omit<LockedRead, 'ids'> = {
  from: 'teams', id: 'id', idColumn: 'id',
  columns: columns('id', 'balance_micro', 'held_micro', 'alert_thresholds', 'balance_alert_base_micro', 'balance_alert_since', 'balance_alert_fired_pct', 'row_version'),
  guard: ['row_version'],
};
const MEMBERS: Omit<LockedRead, 'ids'> = {
  from: 'team_members', id: 'id', idColumn: 'id',
  columns: [
    ...columns('id', 'budget_micro', 'budget_spend_micro', 'budget_held_micro', 'budget_period_start', 'alert_fired_pct', 'row_version'),
    // The team's thresholds on member budgets, unlocked like its other settings on the key read.
    ['team_alert_thresholds', '(SELECT t.alert_thresholds FROM teams t WHERE t.id = team_members.team_id)'],
  ],
  guard: ['row_version'],
};
const HOLDS: Omit<LockedRead, 'ids'> = {
  from: 'holds', id: 'request_id', idColumn: 'request_id',
  columns: columns(
    'request_id', 'key_id', 'user_id', 'team_id', 'amount_micro', 'payer_amount_micro', 'member_amount_micro', 'rate_tokens', 'model', 'provider', 'endpoint',
    'streamed', 'created_at', 'deadline_at', 'row_version',
  ),
  guard: ['row_version'],
};
// The catalog entries admissions were estimated from, read without a lock (every request of a model reads its row),
// and last: the first plain read fixes the snapshot, after the locks.
const MODELS: Omit<LockedRead, 'ids'> = {
  from: 'models', id: 'id', idColumn: 'id', lock: false,
  columns: columns(
    'id', 'provider', 'upstream_model', 'input_micro_per_mtok', 'output_micro_per_mtok', 'cached_input_micro_per_mtok', 'cache_write_micro_per_mtok',
    'cache_write_1h_micro_per_mtok', 'max_output_tokens', 'enabled', 'row_version',
  ),
  guard: ['row_version'],
};

export type MeteringTable = 'keys' | 'balances' | 'teams' | 'members' | 'holds' | 'models';
type Table = MeteringTable;
const READ_OF: Record<Table, Omit<LockedRead, 'ids'>> = { keys: KEYS, balances: BALANCES, teams: TEAMS, members: MEMBERS, holds: HOLDS, models: MODELS };
const READS: Array<[Table, keyof MeteringIds, Omit<LockedRead, 'ids'>]> = [
  ['keys', 'keys', KEYS], ['balances', 'users', BALANCES], ['teams', 'teams', TEAMS], ['members', 'members', MEMBERS], ['holds', 'requests', HOLDS],
  ['models', 'models', MODELS],
];

/** The batch's reads in lock order (a read with no ids is left out), and which table each result set is. */
function readsFor(ids: MeteringIds): { reads: LockedRead[]; tables: Table[] } {
  const reads: LockedRead[] = [];
  const tables: Table[] = [];
  for (const [table, idsOfTable, read] of READS)
    if (ids[idsOfTable].length) {
      reads.push({ ...read, ids: ids[idsOfTable] });
      tables.push(table);
    }
  return { reads, tables };
}

// ---- Database rows → the planner's rows ------------------------------------------------------------------------

const keyRow = (r: Row): KeyRow => ({
  id: r.id as string, ownerId: r.owner_id as string, teamId: (r.team_id as string | null) ?? null, status: r.status as KeyStatus,
  spendMicro: toMicro(r.spend_micro), heldMicro: toMicro(r.held_micro), limitMicro: toMicroOrNull(r.spend_limit_micro),
  requestCount: toInt(r.request_count), expiresAt: toDateOrNull(r.expires_at), retireAt: toDateOrNull(r.retire_at), ownerDisabled: toBool(r.owner_disabled),
  limitReset: (r.limit_reset as LimitReset | null) ?? null, periodSpendMicro: toMicro(r.period_spend_micro), periodStart: toDateOrNull(r.period_start),
  allowedModels: allowedModelsOf(parseModelList(r.allowed_models), parseModelList(r.team_allowed_models)),
  rateLimits: effectiveRateLimits(
    { rpmLimit: intOrNull(r.rpm_limit), tpmLimit: intOrNull(r.tpm_limit), maxParallel: intOrNull(r.max_parallel) },
    { rpmLimit: intOrNull(r.team_default_rpm_limit), tpmLimit: intOrNull(r.team_default_tpm_limit), maxParallel: intOrNull(r.team_default_max_parallel) },
  ),
  inFlight: toInt(r.in_flight), rateWindowStart: toDateOrNull(r.rate_window_start), rateWindowRequests: toInt(r.rate_window_requests),
  rateWindowTokens: toInt(r.rate_window_tokens), alertThresholds: parseThresholds(r.alert_thresholds), alertFiredPct: toInt(r.alert_fired_pct),
  settings: Object.fromEntries(KEY_SETTINGS.map((c) => [c, r[c] ?? null])),
});
const intOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : toInt(v));
const memberRow = (r: Row): MemberRow => ({
  id: r.id as string, budgetMicro: toMicroOrNull(r.budget_micro), spendMicro: toMicro(r.budget_spend_micro), heldMicro: toMicro(r.budget_held_micro),
  periodStart: toDateOrNull(r.budget_period_start), alertThresholds: parseThresholds(r.team_alert_thresholds), alertFiredPct: toInt(r.alert_fired_pct),
  storedThresholds: r.team_alert_thresholds ?? null,
});
const balanceRow = (r: Row): BalanceRow => ({
  userId: r.user_id as string, includedUsedMicro: toMicro(r.included_used_micro), overageUsedMicro: toMicro(r.overage_used_micro),
  prepaidMicro: toMicro(r.prepaid_micro), heldMicro: toMicro(r.held_micro), periodStart: toDate(r.period_start),
  includedMicro: toMicro(r.included_micro), overageAllowed: toBool(r.overage_allowed), overageCapMicro: toMicroOrNull(r.overage_cap_micro),
  alertThresholds: parseThresholds(r.user_alert_thresholds), alertFiredPct: toInt(r.alert_fired_pct), storedThresholds: r.user_alert_thresholds ?? null,
});
const teamRow = (r: Row): TeamRow => ({
  id: r.id as string, balanceMicro: toMicro(r.balance_micro), heldMicro: toMicro(r.held_micro), alertThresholds: parseThresholds(r.alert_thresholds),
  alertBaseMicro: toMicroOrNull(r.balance_alert_base_micro), alertSince: toDateOrNull(r.balance_alert_since), alertFiredPct: toInt(r.balance_alert_fired_pct),
  storedThresholds: r.alert_thresholds ?? null,
});
const holdRow = (r: Row): HoldRow => ({
  requestId: r.request_id as string, keyId: r.key_id as string, userId: r.user_id as string, teamId: (r.team_id as string | null) ?? null,
  keyHoldMicro: toMicro(r.amount_micro), payerHoldMicro: toMicro(r.payer_amount_micro), memberHoldMicro: toMicro(r.member_amount_micro),
  rateTokens: toInt(r.rate_tokens), model: r.model as string, provider: r.provider as string,
  endpoint: r.endpoint as string, streamed: toBool(r.streamed), createdAt: toDate(r.created_at), deadlineAt: toDate(r.deadline_at),
});

export { holdRow as holdFromRow };

function rowsOf(sets: Row[][], tables: Table[]): MeteringRows {
  const set = (t: Table) => (tables.includes(t) ? sets[tables.indexOf(t)]! : []);
  return {
    keys: new Map(set('keys').map((r) => [r.id as string, keyRow(r)])),
    balances: new Map(set('balances').map((r) => [r.user_id as string, balanceRow(r)])),
    teams: new Map(set('teams').map((r) => [r.id as string, teamRow(r)])),
    members: new Map(set('members').map((r) => [r.id as string, memberRow(r)])),
    holds: new Map(set('holds').map((r) => [r.request_id as string, holdRow(r)])),
    models: new Map(set('models').map((r) => [r.id as string, modelFromRow(r)])),
  };
}

// ---- The planner's rows → remembered images (exactly the columns of the reads, as bindings) ----------------------

const keyImage = (k: KeyRow): Row => ({
  id: k.id, owner_id: k.ownerId, team_id: k.teamId, status: k.status, spend_micro: k.spendMicro, held_micro: k.heldMicro,
  spend_limit_micro: k.limitMicro, request_count: k.requestCount, expires_at: k.expiresAt, retire_at: k.retireAt, owner_disabled: k.ownerDisabled,
  period_spend_micro: k.periodSpendMicro, period_start: k.periodStart, in_flight: k.inFlight, rate_window_start: k.rateWindowStart,
  rate_window_requests: k.rateWindowRequests, rate_window_tokens: k.rateWindowTokens, alert_fired_pct: k.alertFiredPct, ...k.settings,
});
const memberImage = (m: MemberRow): Row => ({
  id: m.id, budget_micro: m.budgetMicro, budget_spend_micro: m.spendMicro, budget_held_micro: m.heldMicro, budget_period_start: m.periodStart,
  alert_fired_pct: m.alertFiredPct, team_alert_thresholds: m.storedThresholds ?? null,
});
const balanceImage = (b: BalanceRow): Row => ({
  user_id: b.userId, included_used_micro: b.includedUsedMicro, prepaid_micro: b.prepaidMicro, overage_used_micro: b.overageUsedMicro,
  held_micro: b.heldMicro, period_start: b.periodStart, included_micro: b.includedMicro, overage_allowed: b.overageAllowed, overage_cap_micro: b.overageCapMicro,
  alert_fired_pct: b.alertFiredPct, user_alert_thresholds: b.storedThresholds ?? null,
});
const teamImage = (t: TeamRow): Row => ({
  id: t.id, balance_micro: t.balanceMicro, held_micro: t.heldMicro, alert_thresholds: t.storedThresholds ?? null, balance_alert_base_micro: t.alertBaseMicro,
  balance_alert_since: t.alertSince, balance_alert_fired_pct: t.alertFiredPct,
});
const holdImage = (h: HoldRow): Row => ({
  request_id: h.requestId, key_id: h.keyId, user_id: h.userId, team_id: h.teamId, amount_micro: h.keyHoldMicro, payer_amount_micro: h.payerHoldMicro,
  member_amount_micro: h.memberHoldMicro, rate_tokens: h.rateTokens, model: h.model, provider: h.provider, endpoint: h.endpoint, streamed: h.streamed, created_at: h.createdAt, deadline_at: h.deadlineAt,
});
const modelImage = (m: CatalogModel): Row => ({
  id: m.id, provider: m.provider, upstream_model: m.upstreamModel, input_micro_per_mtok: m.inputMicroPerMTok,
  output_micro_per_mtok: m.outputMicroPerMTok, cached_input_micro_per_mtok: m.cachedInputMicroPerMTok, cache_write_micro_per_mtok: m.cacheWriteMicroPerMTok,
  cache_write_1h_micro_per_mtok: m.cacheWrite1hMicroPerMTok, max_output_tokens: m.maxOutputTokens, enabled: m.enabled,
});

// ---- Row versions: the columns the planner does not see ---------------------------------------------------------

/** Per table, the version columns of its read (what the guess check compares besides values of other rows). */
const VERSIONS: Record<Table, string[]> = {
  keys: ['row_version'], balances: ['row_version'], teams: ['row_version'], members: ['row_version'],
  holds: ['row_version'], models: ['row_version'],
};
type Versions = Map<Table, Map<string, Row>>;

/**
 * The version columns of the batch's rows as its writes leave them: a row an UPDATE of the batch touches is one
 * higher (the trigger raises it once per UPDATE, changed or not, and each table gets at most one UPDATE per batch —
 * see `statements`), a placed hold starts at 0, the rest are as read. Known exactly because they come from the
 * rows this very transaction locked; never predicted for rows written elsewhere (see forgetHolds).
 */
function versionsAfter(sets: Row[][], tables: Table[], changes: MeteringChanges): Versions {
  const updated: Record<Table, string[]> = {
    keys: changes.keys.map((c) => c.id), balances: changes.balances.map((c) => c.userId), teams: changes.teams.map((c) => c.id),
    members: changes.members.map((c) => c.id), holds: changes.holdsResized.map((c) => c.requestId), models: [],
  };
  const out: Versions = new Map((Object.keys(VERSIONS) as Table[]).map((t) => [t, new Map()]));
  tables.forEach((table, i) => {
    const bumped = new Set(updated[table]);
    for (const row of sets[i]!) {
      const id = String(row[READ_OF[table].idColumn]);
      const versions: Row = Object.fromEntries(VERSIONS[table].map((c) => [c, row[c]]));
      if (bumped.has(id)) versions.row_version = toInt(row.row_version) + 1;
      out.get(table)!.set(id, versions);
    }
  });
  for (const h of changes.holdsPlaced) out.get('holds')!.set(h.requestId, { row_version: 0 });
  return out;
}

/** Every row of the batch as it is after its writes (see RowCache); settled holds are forgotten. */
function remember(cache: RowCache, after: MeteringRows, removed: string[], versions: Versions): void {
  const put = <T>(table: Table, rows: Map<string, T>, image: (row: T) => Row) => {
    const read = { ...READ_OF[table], ids: [] };
    for (const row of rows.values()) {
      const values = image(row);
      const id = String(values[read.idColumn]);
      const known = versions.get(table)!.get(id);
      // A row without a known version is not remembered: its guess could not be checked.
      if (known) cache.set(read, { ...values, ...known });
      else cache.delete(read, id);
    }
  };
  put('keys', after.keys, keyImage);
  put('balances', after.balances, balanceImage);
  put('teams', after.teams, teamImage);
  put('members', after.members, memberImage);
  put('holds', after.holds, holdImage);
  put('models', after.models, modelImage);
  for (const id of removed) cache.delete({ ...HOLDS, ids: [] }, id);
}

/**
 * What this instance remembers of a row beside what the database holds now, read the same way (no lock): equal in
 * every column whenever the versions are equal, or a guess that passes its check would plan from wrong values.
 * For tests and for an operator chasing a doubt; null where there is nothing.
 */
export async function remembered(db: Db, cache: RowCache, table: MeteringTable, id: string): Promise<{ remembered: Row | null; stored: Row | null }> {
  const read = { ...READ_OF[table], ids: [id], lock: false };
  const select = lockingSelect(read, false);
  const result = (await db.raw(select.sql, select.bindings)) as unknown;
  // knex gives MySQL's [rows, fields] and SQLite's rows.
  const rows = (Array.isArray((result as unknown[])[0]) ? (result as unknown[][])[0] : result) as Row[];
  return { remembered: cache.guess([read])?.[0]?.[0] ?? null, stored: rows[0] ?? null };
}

/**
 * Holds whose rows were written outside a metering batch (the renewal of their deadlines) are forgotten: the
 * write raised their versions, and a version is only ever remembered from the transaction that wrote it.
 */
export function forgetHolds(cache: RowCache, requestIds: string[]): void {
  cache.forget([{ ...HOLDS, ids: requestIds }]);
}

// ---- Changes → statements ---------------------------------------------------------------------------------------

const USAGE_EVENT_COLUMNS = [
  'request_id', 'key_id', 'user_id', 'team_id', 'model', 'provider', 'endpoint', 'input_tokens', 'cached_input_tokens', 'cache_write_5m_tokens',
  'cache_write_1h_tokens', 'output_tokens', 'reasoning_tokens', 'cost_micro', 'included_micro', 'prepaid_micro', 'overage_micro', 'team_micro',
  'outcome', 'estimated', 'http_status', 'latency_ms', 'streamed', 'started_at', 'created_at',
];
const LEDGER_COLUMNS = ['account', 'user_id', 'team_id', 'key_id', 'amount_micro', 'kind', 'request_id', 'period_start', 'created_at'];
const HOLD_COLUMNS = [
  'request_id', 'key_id', 'user_id', 'team_id', 'amount_micro', 'payer_amount_micro', 'member_amount_micro', 'rate_tokens', 'model', 'provider', 'endpoint',
  'streamed', 'created_at', 'deadline_at',
];

/** One UPDATE per table: `SET col = CASE id WHEN ? THEN ? … END` for each column some row changes (`col = ?` for one row). */
function updateRows<C>(table: string, idColumn: string, changes: C[], id: (c: C) => string, values: (c: C) => Record<string, unknown> | null, always: (c: C) => Record<string, unknown>): Stmt[] {
  if (!changes.length) return [];
  const byColumn = new Map<string, Map<string, unknown>>();
  for (const c of changes)
    for (const [column, value] of Object.entries({ ...always(c), ...values(c) })) {
      if (!byColumn.has(column)) byColumn.set(column, new Map());
      byColumn.get(column)!.set(id(c), value);
    }
  // One row (every request alone, most batches of a quiet instance): plain `col = ?`, a shorter statement.
  const sets = [...byColumn].map(([column, rows]) => {
    if (changes.length === 1) return { sql: `${column} = ?`, bindings: [rows.values().next().value as Knex.RawBinding] };
    const c = caseOf(idColumn, column, rows);
    return { sql: `${column} = ${c.sql}`, bindings: c.bindings };
  });
  return [updateWhere(table, { sql: sets.map((s) => s.sql).join(', '), bindings: sets.flatMap((s) => s.bindings) }, idIn(idColumn, changes.map(id)))];
}

export function statements(changes: MeteringChanges): Stmt[] {
  const b = (v: unknown) => v as Knex.RawBinding;
  return [
    ...updateRows('api_keys', 'id', changes.keys, (c) => c.id, (c) => c.charged ? {
      spend_micro: c.charged.spendMicro, request_count: c.charged.requestCount, last_used_at: c.charged.lastUsedAt,
    } : null, (c) => ({
      held_micro: c.heldMicro, status: c.status, in_flight: c.inFlight, rate_window_start: c.rateWindowStart, rate_window_requests: c.rateWindowRequests,
      rate_window_tokens: c.rateWindowTokens, period_start: c.periodStart, period_spend_micro: c.periodSpendMicro, alert_fired_pct: c.alertFiredPct,
    })),
    ...updateRows('personal_balances', 'user_id', changes.balances, (c) => c.userId, (c) => c.charged ? {
      included_used_micro: c.charged.includedUsedMicro, prepaid_micro: c.charged.prepaidMicro, overage_used_micro: c.charged.overageUsedMicro, updated_at: c.charged.updatedAt,
    } : null, (c) => ({ held_micro: c.heldMicro, alert_fired_pct: c.alertFiredPct })),
    ...updateRows('teams', 'id', changes.teams, (c) => c.id, (c) => (c.balanceMicro !== undefined ? { balance_micro: c.balanceMicro } : null), (c) => ({
      held_micro: c.heldMicro, balance_alert_fired_pct: c.alertFiredPct,
    })),
    ...updateRows('team_members', 'id', changes.members, (c) => c.id, () => null, (c) => ({
      budget_held_micro: c.heldMicro, budget_spend_micro: c.spendMicro, budget_period_start: c.periodStart, alert_fired_pct: c.alertFiredPct,
    })),
    ...updateRows('holds', 'request_id', changes.holdsResized, (c) => c.requestId, () => null, (c) => ({
      amount_micro: c.keyHoldMicro, payer_amount_micro: c.payerHoldMicro, member_amount_micro: c.memberHoldMicro,
    })),
    ...(changes.holdsRemoved.length ? [deleteWhere('holds', idIn('request_id', changes.holdsRemoved))] : []),
    ...(changes.usageEvents.length ? [insertRows('usage_events', USAGE_EVENT_COLUMNS, changes.usageEvents.map((e) => [
      e.requestId, e.keyId, e.userId, e.teamId, e.model, e.provider, e.endpoint, e.inputTokens, e.cachedInputTokens, e.cacheWrite5mTokens,
      e.cacheWrite1hTokens, e.outputTokens, e.reasoningTokens, e.costMicro, e.includedMicro, e.prepaidMicro, e.overageMicro, e.teamMicro,
      e.outcome, e.estimated, e.httpStatus, e.latencyMs, e.streamed, e.startedAt, e.createdAt,
    ].map(b)))] : []),
    ...(changes.ledger.length ? [insertRows('ledger_entries', LEDGER_COLUMNS, changes.ledger.map((l) => [
      l.account, l.userId, l.teamId, l.keyId, l.amountMicro, 'usage', l.requestId, l.periodStart, l.createdAt,
    ].map(b)))] : []),
    ...(changes.alerts.length ? [insertFirings(changes.alerts)] : []),
    ...(changes.holdsPlaced.length ? [insertRows('holds', HOLD_COLUMNS, changes.holdsPlaced.map((h) => [
      h.requestId, h.keyId, h.userId, h.teamId, h.keyHoldMicro, h.payerHoldMicro, h.memberHoldMicro, h.rateTokens, h.model, h.provider, h.endpoint, h.streamed, h.createdAt, h.deadlineAt,
    ].map(b)))] : []),
  ];
}

const FIRING_COLUMNS = [
  'event_type', 'scope_id', 'period_start', 'threshold', 'user_id', 'team_id', 'key_id', 'spent_micro', 'limit_micro', 'request_id', 'created_at',
] as const;

/**
 * The firing records of a batch's crossings, each only if its (type, scope, period, threshold) is not recorded yet.
 * The planner never crosses a threshold twice in a period (the highest fired is on the locked row), but a row whose
 * period was restarted within the same period (keys.update switching limitReset back and forth) could: then the
 * firing is skipped instead of failing the settlement on the unique key. The scope's row lock serialises these.
 */
function insertFirings(alerts: MeteringChanges['alerts']): Stmt {
  const row = `SELECT ${FIRING_COLUMNS.map((c) => `? AS ${c}`).join(', ')}`;
  const values = (a: MeteringChanges['alerts'][number]) => [
    a.eventType, a.scopeId, a.periodStart, a.threshold, a.userId, a.teamId, a.keyId, a.spentMicro, a.limitMicro, a.requestId, a.createdAt,
  ] as Knex.RawBinding[];
  return {
    sql: `INSERT INTO alert_firings (${FIRING_COLUMNS.join(', ')}) SELECT ${FIRING_COLUMNS.map((c) => `f.${c}`).join(', ')} FROM (${alerts.map(() => row).join(' UNION ALL ')}) AS f ` +
      'WHERE NOT EXISTS (SELECT 1 FROM alert_firings a WHERE a.event_type = f.event_type AND a.scope_id = f.scope_id AND a.period_start = f.period_start AND a.threshold = f.threshold)',
    bindings: alerts.flatMap(values),
  };
}

// ---- One batch ----------------------------------------------------------------------------------------------------

export interface Batched {
  results: OpResult[];
  /** The transaction took one round trip (planned from remembered rows). */
  guessed: boolean;
}

/**
 * Admits, grows, settles and releases a batch in one transaction: lock the rows (lockedTransaction: one round trip when
 * the remembered rows are right), plan, write, commit. Throws PeriodRolloverDue (nothing written) when a payer to
 * be charged is still in an ended billing period.
 */
export async function meterBatch(db: Db, ops: MeteringOp[], ctx: PlanContext & { cache: RowCache }): Promise<Batched> {
  const { reads, tables } = readsFor(idsOf(ops));
  let after: { rows: MeteringRows; removed: string[]; versions: Versions } | undefined;
  let outcome: { value: OpResult[]; guessed: boolean };
  try {
    outcome = await lockedTransaction(db, reads, (sets) => {
      const rows = rowsOf(sets, tables);
      const planned = planBatch(rows, ops, ctx);
      if (planned.rolloverDue.length) throw new PeriodRolloverDue(planned.rolloverDue);
      after = { rows: applyChanges(rows, planned.changes), removed: planned.changes.holdsRemoved, versions: versionsAfter(sets, tables, planned.changes) };
      return { writes: statements(planned.changes), value: planned.results };
    }, ctx.cache.guess(reads));
  } catch (err) {
    // Nothing was written, but what these rows now hold is unknown.
    ctx.cache.forget(reads);
    throw err;
  }
  remember(ctx.cache, after!.rows, after!.removed, after!.versions);
  return { results: outcome.value, guessed: outcome.guessed };
}
