import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import { toInt } from '../../db/rows.js';
import type { Actor } from '../actor.js';
import type { Clock } from '../clock.js';
import { visibleKeysQuery, type KeysService } from '../keys/keys.service.js';
import { toMicro, type Micro } from '../money.js';
import { lastLocalDays, localDaysBetween, type LocalDay } from '../billing/period.js';
import { isInstallationAdmin } from '../actor.js';
import { badInput, forbidden } from '../errors.js';

/**
 * Aggregated usage for people: the portal's daily charts (in the viewer's time zone, empty days included),
 * period totals and breakdowns by model, member and key. The event log itself is UsageService.list.
 *
 * Who may see which usage is NOT decided here: a scope is always built from the keys the actor may see
 * (visibleKeysQuery / KeysService.get, the role table), so usage visibility can never drift from key visibility.
 * Every report takes a scope, never raw key ids from a request.
 */
export interface UsageScope {
  /** A query over api_keys selecting the visible keys; null when the actor may see none. */
  readonly keys: Knex.QueryBuilder | null;
}

export interface ScopeFilter {
  keyId?: string;
  teamId?: string;
  /** Only the actor's personal keys. */
  personal?: boolean;
  /** Only keys the actor owns (personal and team). */
  ownOnly?: boolean;
}

export interface DailySpend {
  date: string;
  costMicro: Micro;
  requests: number;
}

export interface Breakdown {
  id: string;
  label: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costMicro: Micro;
}

/** [from, to): either end open when absent. */
export interface UsageWindow {
  from?: Date;
  to?: Date;
}

export interface InstallationSummary {
  from: Date;
  to: Date;
  total: { requests: number; inputTokens: number; outputTokens: number; costMicro: Micro };
  /** Spend over the period, one entry per bar (named by its first local day). */
  over: DailySpend[];
  /** How many days each bar of `over` covers (1 up to CHART_BARS days). */
  bucketDays: number;
  byModel: Breakdown[];
  byProvider: Breakdown[];
  /** `id` and `label` are '' for personal keys. */
  byTeam: Breakdown[];
  byUser: Breakdown[];
}

/** The longest period the installation summary covers, and the most bars its chart draws. */
export const SUMMARY_MAX_DAYS = 366;
const CHART_BARS = 62;

/** Consecutive runs of `size` days as buckets, the first starting at `from` and the last ending at `to`. */
function runsOf(days: LocalDay[], size: number, from: Date, to: Date): Array<{ date: string; start: Date; end: Date }> {
  const runs: Array<{ date: string; start: Date; end: Date }> = [];
  for (let i = 0; i < days.length; i += size) {
    const run = days.slice(i, i + size);
    runs.push({ date: run[0]!.date, start: i === 0 ? from : run[0]!.start, end: i + size >= days.length ? to : run[run.length - 1]!.end });
  }
  return runs;
}

export interface UsageReportsDeps {
  db: Db;
  clock: Clock;
  keys: KeysService;
}

export class UsageReports {
  constructor(private readonly deps: UsageReportsDeps) {}

  /** The keys whose usage the actor may see, narrowed by the filter. Unknown or foreign keys/teams: NOT_FOUND. */
  async scope(filter: ScopeFilter, actor: Actor): Promise<UsageScope> {
    const db = this.deps.db;
    if (filter.keyId) {
      const key = await this.deps.keys.get(filter.keyId, actor);
      return { keys: db('api_keys').where('api_keys.id', key.id) };
    }
    let keys = (await visibleKeysQuery(db, { teamId: filter.teamId }, actor))?.query ?? null;
    if (keys && filter.personal) keys = keys.whereNull('api_keys.team_id');
    if (keys && filter.ownOnly) keys = keys.where('api_keys.owner_id', actor.userId);
    return { keys };
  }

  /** Total cost and request count in [from, to). */
  async total(scope: UsageScope, from: Date, to: Date | null = null): Promise<{ costMicro: Micro; requests: number }> {
    if (!scope.keys) return { costMicro: 0, requests: 0 };
    const db = this.deps.db;
    let query = this.events(scope.keys, 'e').where('e.created_at', '>=', from);
    if (to) query = query.where('e.created_at', '<', to);
    const row = await query.first(db.raw('COALESCE(SUM(e.cost_micro), 0) as cost'), db.raw('COUNT(*) as n'));
    return { costMicro: toMicro(row?.cost), requests: toInt(row?.n) };
  }

  /**
   * Spend per local calendar day for the last `days` days (today included), in the viewer's time zone. One
   * conditional sum per day keeps it a single indexed range scan and identical on MySQL and SQLite.
   */
  async daily(scope: UsageScope, days: number, timeZone: string): Promise<DailySpend[]> {
    return this.spendPerBucket(scope, lastLocalDays(this.deps.clock.now(), days, timeZone));
  }

  /** Spend and requests per [start, end) bucket (contiguous, oldest first), each named by its first day. */
  private async spendPerBucket(scope: UsageScope, buckets: ReadonlyArray<{ date: string; start: Date; end: Date }>): Promise<DailySpend[]> {
    if (!scope.keys || buckets.length === 0) return buckets.map((b) => ({ date: b.date, costMicro: 0, requests: 0 }));
    const db = this.deps.db;
    const columns = buckets.flatMap((b, i) => [
      db.raw(`COALESCE(SUM(CASE WHEN e.created_at >= ? AND e.created_at < ? THEN e.cost_micro ELSE 0 END), 0) as c${i}`, [b.start, b.end]),
      db.raw(`COALESCE(SUM(CASE WHEN e.created_at >= ? AND e.created_at < ? THEN 1 ELSE 0 END), 0) as n${i}`, [b.start, b.end]),
    ]);
    const row = await this.events(scope.keys, 'e')
      .where('e.created_at', '>=', buckets[0]!.start)
      .where('e.created_at', '<', buckets[buckets.length - 1]!.end)
      .first(columns);
    return buckets.map((b, i) => ({ date: b.date, costMicro: toMicro(row?.[`c${i}`]), requests: toInt(row?.[`n${i}`]) }));
  }

  /**
   * The whole installation's usage in [from, to), for installation admins (issue #15, point 12): totals, spend over
   * time (a bar per local day, or per run of days for long periods, at most CHART_BARS) and the breakdowns by
   * model, provider, team and user.
   */
  async installationSummary(range: { from: Date; to: Date }, actor: Actor, timeZone: string): Promise<InstallationSummary> {
    if (!isInstallationAdmin(actor)) throw forbidden('Only installation admins see the whole installation\'s usage.');
    const { from, to } = range;
    if (to.getTime() <= from.getTime()) throw badInput('The period ends before it starts: the “To” date must be on or after the “From” date.');
    const days = localDaysBetween(from, to, timeZone);
    if (days.length > SUMMARY_MAX_DAYS) throw badInput(`Choose a period of at most ${SUMMARY_MAX_DAYS} days.`);
    const scope: UsageScope = { keys: this.deps.db('api_keys') };
    const window = { from, to };
    const [over, byModel, byProvider, byTeam, byUser] = await Promise.all([
      this.spendPerBucket(scope, runsOf(days, Math.ceil(days.length / CHART_BARS), from, to)),
      this.byModel(scope, window),
      this.breakdown(scope, window, 'e.provider', (q) => q.select('e.provider as id', 'e.provider as label').groupBy('e.provider')),
      this.breakdown(scope, window, 'label', (q) =>
        q.leftJoin('teams as t', 't.id', 'e.team_id').select(this.deps.db.raw("COALESCE(e.team_id, '') as id"), this.deps.db.raw("COALESCE(t.name, '') as label")).groupBy('e.team_id', 't.name')),
      this.byUser(scope, window),
    ]);
    const total = byProvider.reduce(
      (sum, b) => ({ requests: sum.requests + b.requests, inputTokens: sum.inputTokens + b.inputTokens, outputTokens: sum.outputTokens + b.outputTokens, costMicro: sum.costMicro + b.costMicro }),
      { requests: 0, inputTokens: 0, outputTokens: 0, costMicro: 0 },
    );
    return { from, to, total, over, bucketDays: Math.ceil(days.length / CHART_BARS), byModel, byProvider, byTeam, byUser };
  }

  async byModel(scope: UsageScope, window: UsageWindow = {}): Promise<Breakdown[]> {
    return this.breakdown(scope, window, 'e.model', (q) => q.select('e.model as id', 'e.model as label').groupBy('e.model'));
  }

  /** Usage per member (the owner of each key). */
  async byUser(scope: UsageScope, window: UsageWindow = {}): Promise<Breakdown[]> {
    return this.breakdown(scope, window, 'u.email', (q) =>
      q.join('users as u', 'u.id', 'e.user_id').select('e.user_id as id', 'u.email as label').groupBy('e.user_id', 'u.email'),
    );
  }

  async byKey(scope: UsageScope, window: UsageWindow = {}): Promise<Breakdown[]> {
    return this.breakdown(scope, window, 'k.name', (q) =>
      q.join('api_keys as k', 'k.id', 'e.key_id').select('e.key_id as id', 'k.name as label').groupBy('e.key_id', 'k.name'),
    );
  }

  private events(keys: Knex.QueryBuilder, alias: string): Knex.QueryBuilder {
    return this.deps.db(`usage_events as ${alias}`).whereIn(`${alias}.key_id`, keys.clone().clearSelect().select('api_keys.id'));
  }

  private async breakdown(
    scope: UsageScope,
    window: UsageWindow,
    tieBreak: string,
    shape: (q: Knex.QueryBuilder) => Knex.QueryBuilder,
  ): Promise<Breakdown[]> {
    if (!scope.keys) return [];
    const db = this.deps.db;
    let query = shape(this.events(scope.keys, 'e'));
    if (window.from) query = query.where('e.created_at', '>=', window.from);
    if (window.to) query = query.where('e.created_at', '<', window.to);
    const rows: Array<Record<string, unknown>> = await query
      .select(
        db.raw('COUNT(*) as requests'),
        db.raw('COALESCE(SUM(e.input_tokens), 0) as input_tokens'),
        db.raw('COALESCE(SUM(e.output_tokens), 0) as output_tokens'),
        db.raw('COALESCE(SUM(e.cost_micro), 0) as cost'),
      )
      .orderBy('cost', 'desc')
      .orderBy(tieBreak);
    return rows.map((r) => ({
      id: String(r.id),
      label: String(r.label),
      requests: toInt(r.requests),
      inputTokens: toInt(r.input_tokens),
      outputTokens: toInt(r.output_tokens),
      costMicro: toMicro(r.cost),
    }));
  }
}
