import type { Knex } from 'knex';
import type { Db, Queryable, Tx } from '../../db/knex.js';
import { toDate, toInt } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { statusForLimit, type KeyStatus } from '../keys/key.js';
import { toMicro, toMicroOrNull } from '../money.js';

/** Which cached counter disagreed with its source of truth. */
export type DriftKind =
  | 'key_spend'
  | 'key_held'
  | 'key_request_count'
  | 'key_ledger_mismatch'
  | 'team_balance'
  | 'team_held'
  | 'personal_prepaid'
  | 'personal_included_used'
  | 'personal_overage_used'
  | 'personal_held';

export interface Drift {
  kind: DriftKind;
  target: { type: 'key' | 'team' | 'user'; id: string };
  /** What the cached column said. */
  cached: number;
  /** What the ledger / usage events / holds say. */
  actual: number;
  /** false for inconsistencies no cache update can fix (usage events vs ledger): reported, left for a person. */
  corrected: boolean;
}

export interface ReconcileResult {
  /** Rows that looked drifted in the snapshot and were re-checked under their lock. */
  candidates: number;
  drifts: Drift[];
}

export interface ReconcileDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

/**
 * Checks every cached money counter against its source of truth and corrects the cache:
 * - key spend and request count = its usage events; key debits in the ledger = its usage events (reported only);
 * - team balance = Σ its ledger entries;
 * - personal prepaid = Σ user_prepaid entries; included / overage used = −Σ entries of the row's current period;
 * - held amounts (key, team, personal) = Σ outstanding holds.
 *
 * The ledger is immutable and is the truth, so drift means the CACHED column is wrong: it is set to the sum (never
 * a new ledger entry, which would change money), with an audit event. Two phases keep this cheap and exact while
 * requests settle concurrently:
 * 1. One aggregate query per table inside a read transaction (a consistent snapshot: every settlement is one
 *    transaction, so in a snapshot cache and sums agree unless something is really wrong) finds candidates.
 * 2. Each candidate is re-checked under its row lock and corrected in the same transaction. All writers of a row's
 *    counters (admission, settlement, top-ups) hold that same lock while they write, so under it the sums are
 *    stable. On MySQL the transaction's snapshot is taken at its first plain read, which comes after the locking
 *    read, so the sums include everything committed before the lock was granted.
 * Each transaction locks a single row, which trivially respects the lock order key → user balance → team.
 * Running it again, or on two instances at once, finds nothing left to correct.
 */
export class ReconcileService {
  constructor(private readonly deps: ReconcileDeps) {}

  async reconcile(actor: Actor): Promise<ReconcileResult> {
    const candidates = await this.deps.db.transaction(async (snapshot) => ({
      keys: await driftedKeys(snapshot),
      users: await driftedPersonalBalances(snapshot),
      teams: await driftedTeams(snapshot),
    }));
    const drifts: Drift[] = [];
    // Keys, then user balances, then teams: the same order as the locks the money path takes.
    for (const id of candidates.keys) drifts.push(...(await this.correctKey(id, actor)));
    for (const id of candidates.users) drifts.push(...(await this.correctPersonal(id, actor)));
    for (const id of candidates.teams) drifts.push(...(await this.correctTeam(id, actor)));
    return { candidates: candidates.keys.length + candidates.users.length + candidates.teams.length, drifts };
  }

  private correctKey(id: string, actor: Actor): Promise<Drift[]> {
    return withTransaction(this.deps.db, async (tx) => {
      const row = await tx('api_keys').where({ id }).forUpdate().first('spend_micro', 'held_micro', 'request_count', 'spend_limit_micro', 'status');
      if (!row) return [];
      const usage = await tx('usage_events').where({ key_id: id }).sum({ s: 'cost_micro' }).count({ n: '*' }).first();
      const debits = await tx('ledger_entries').where({ key_id: id, kind: 'usage' }).sum({ s: 'amount_micro' }).first();
      const held = await tx('holds').where({ key_id: id }).sum({ s: 'amount_micro' }).first();
      const spend = toMicro(usage?.s);
      const target = { type: 'key' as const, id };
      const drifts = compare(target, [
        ['key_spend', 'spend_micro', toMicro(row.spend_micro), spend],
        ['key_held', 'held_micro', toMicro(row.held_micro), toMicro(held?.s)],
        ['key_request_count', 'request_count', toInt(row.request_count), toInt(usage?.n)],
      ]);
      // Usage events and ledger debits are both immutable records written by the same settlement; if they disagree,
      // no cache update can tell which is right. Report it loudly and leave it for a person.
      const ledgerSpend = -toMicro(debits?.s);
      const mismatch: Drift[] =
        ledgerSpend === spend ? [] : [{ kind: 'key_ledger_mismatch', target, cached: ledgerSpend, actual: spend, corrected: false }];
      if (!drifts.length) return mismatch;

      const patch = patchOf(drifts);
      const stored = row.status as KeyStatus;
      // The limit status was judged on the wrong spend; judge it again on the true one. A limit with a budget period
      // is judged on the period's spend, which metering keeps on the key row: left to the next admission.
      const status = row.limit_reset ? stored : statusForLimit(stored, spend, toMicroOrNull(row.spend_limit_micro));
      if (status !== stored) patch.status = status;
      await tx('api_keys').where({ id }).update({ ...patch, updated_at: this.deps.clock.now() });
      await this.audit(tx, actor, target, drifts, status !== stored ? { status: { from: stored, to: status } } : {});
      return [...drifts, ...mismatch];
    });
  }

  private correctPersonal(userId: string, actor: Actor): Promise<Drift[]> {
    return withTransaction(this.deps.db, async (tx) => {
      const row = await tx('personal_balances').where({ user_id: userId }).forUpdate().first();
      if (!row) return [];
      const periodStart = toDate(row.period_start);
      const sums = await tx('ledger_entries')
        .where({ user_id: userId })
        .whereIn('account', ['user_prepaid', 'user_included', 'user_overage'])
        .select('account')
        .sum({ s: 'amount_micro' })
        .groupBy('account')
        .where((w) => w.where('account', 'user_prepaid').orWhere('period_start', periodStart));
      const sumOf = (account: string) => toMicro(sums.find((r: Record<string, unknown>) => r.account === account)?.s);
      const held = await tx('holds').where({ user_id: userId }).whereNull('team_id').sum({ s: 'payer_amount_micro' }).first();
      const target = { type: 'user' as const, id: userId };
      const drifts = compare(target, [
        ['personal_prepaid', 'prepaid_micro', toMicro(row.prepaid_micro), sumOf('user_prepaid')],
        ['personal_included_used', 'included_used_micro', toMicro(row.included_used_micro), -sumOf('user_included')],
        ['personal_overage_used', 'overage_used_micro', toMicro(row.overage_used_micro), -sumOf('user_overage')],
        ['personal_held', 'held_micro', toMicro(row.held_micro), toMicro(held?.s)],
      ]);
      if (!drifts.length) return [];
      await tx('personal_balances').where({ user_id: userId }).update({ ...patchOf(drifts), updated_at: this.deps.clock.now() });
      await this.audit(tx, actor, target, drifts, { periodStart: periodStart.toISOString() });
      return drifts;
    });
  }

  private correctTeam(teamId: string, actor: Actor): Promise<Drift[]> {
    return withTransaction(this.deps.db, async (tx) => {
      const row = await tx('teams').where({ id: teamId }).forUpdate().first('balance_micro', 'held_micro');
      if (!row) return [];
      const ledger = await tx('ledger_entries').where({ team_id: teamId, account: 'team' }).sum({ s: 'amount_micro' }).first();
      const held = await tx('holds').where({ team_id: teamId }).sum({ s: 'payer_amount_micro' }).first();
      const target = { type: 'team' as const, id: teamId };
      const drifts = compare(target, [
        ['team_balance', 'balance_micro', toMicro(row.balance_micro), toMicro(ledger?.s)],
        ['team_held', 'held_micro', toMicro(row.held_micro), toMicro(held?.s)],
      ]);
      if (!drifts.length) return [];
      await tx('teams').where({ id: teamId }).update({ ...patchOf(drifts), updated_at: this.deps.clock.now() });
      await this.audit(tx, actor, target, drifts);
      return drifts;
    });
  }

  private audit(tx: Tx, actor: Actor, target: Drift['target'], drifts: CorrectedDrift[], extra: Record<string, unknown> = {}): Promise<void> {
    return this.deps.audit.record(tx, actor, 'reconcile.correct', target, {
      corrections: drifts.map((d) => ({ field: d.column, cached: d.cached, actual: d.actual, difference: d.actual - d.cached })),
      ...extra,
    });
  }
}

interface CorrectedDrift extends Drift {
  column: string;
}

function compare(target: Drift['target'], checks: Array<[DriftKind, string, number, number]>): CorrectedDrift[] {
  return checks
    .filter(([, , cached, actual]) => cached !== actual)
    .map(([kind, column, cached, actual]) => ({ kind, target, cached, actual, corrected: true, column }));
}

function patchOf(drifts: CorrectedDrift[]): Record<string, unknown> {
  return Object.fromEntries(drifts.map((d) => [d.column, d.actual]));
}

// Phase 1: one aggregate query per table, returning only the ids whose cache disagrees with the sums.

function sumBy(q: Queryable, table: string, by: string, column: string, where: (b: Knex.QueryBuilder) => Knex.QueryBuilder, alias: string) {
  return where(q(table).select(by).sum({ s: column }).count({ n: '*' }).groupBy(by)).as(alias);
}

async function driftedKeys(q: Queryable): Promise<string[]> {
  const rows = await q('api_keys as k')
    .leftJoin(sumBy(q, 'usage_events', 'key_id', 'cost_micro', (b) => b, 'u'), 'u.key_id', 'k.id')
    .leftJoin(sumBy(q, 'ledger_entries', 'key_id', 'amount_micro', (b) => b.where('kind', 'usage').whereNotNull('key_id'), 'l'), 'l.key_id', 'k.id')
    .leftJoin(sumBy(q, 'holds', 'key_id', 'amount_micro', (b) => b, 'h'), 'h.key_id', 'k.id')
    .where((w) =>
      w
        .whereRaw('k.spend_micro <> COALESCE(u.s, 0)')
        .orWhereRaw('k.request_count <> COALESCE(u.n, 0)')
        .orWhereRaw('k.held_micro <> COALESCE(h.s, 0)')
        .orWhereRaw('COALESCE(l.s, 0) + COALESCE(u.s, 0) <> 0'),
    )
    .orderBy('k.id')
    .pluck('k.id');
  return rows as string[];
}

async function driftedPersonalBalances(q: Queryable): Promise<string[]> {
  const perPeriod = (account: string, alias: string) =>
    q('ledger_entries').where('account', account).select('user_id', 'period_start').sum({ s: 'amount_micro' }).groupBy('user_id', 'period_start').as(alias);
  const rows = await q('personal_balances as b')
    .leftJoin(sumBy(q, 'ledger_entries', 'user_id', 'amount_micro', (b) => b.where('account', 'user_prepaid'), 'p'), 'p.user_id', 'b.user_id')
    .leftJoin(perPeriod('user_included', 'i'), (j) => j.on('i.user_id', 'b.user_id').andOn('i.period_start', 'b.period_start'))
    .leftJoin(perPeriod('user_overage', 'o'), (j) => j.on('o.user_id', 'b.user_id').andOn('o.period_start', 'b.period_start'))
    .leftJoin(sumBy(q, 'holds', 'user_id', 'payer_amount_micro', (b) => b.whereNull('team_id'), 'h'), 'h.user_id', 'b.user_id')
    .where((w) =>
      w
        .whereRaw('b.prepaid_micro <> COALESCE(p.s, 0)')
        .orWhereRaw('b.included_used_micro + COALESCE(i.s, 0) <> 0')
        .orWhereRaw('b.overage_used_micro + COALESCE(o.s, 0) <> 0')
        .orWhereRaw('b.held_micro <> COALESCE(h.s, 0)'),
    )
    .orderBy('b.user_id')
    .pluck('b.user_id');
  return rows as string[];
}

async function driftedTeams(q: Queryable): Promise<string[]> {
  const rows = await q('teams as t')
    .leftJoin(sumBy(q, 'ledger_entries', 'team_id', 'amount_micro', (b) => b.where('account', 'team').whereNotNull('team_id'), 'l'), 'l.team_id', 't.id')
    .leftJoin(sumBy(q, 'holds', 'team_id', 'payer_amount_micro', (b) => b.whereNotNull('team_id'), 'h'), 'h.team_id', 't.id')
    .where((w) => w.whereRaw('t.balance_micro <> COALESCE(l.s, 0)').orWhereRaw('t.held_micro <> COALESCE(h.s, 0)'))
    .orderBy('t.id')
    .pluck('t.id');
  return rows as string[];
}
