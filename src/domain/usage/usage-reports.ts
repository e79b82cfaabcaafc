import type { Knex } from 'knex';
import type { Db } from '../../db/knex.js';
import { toInt } from '../../db/rows.js';
import type { Actor } from '../actor.js';
import type { Clock } from '../clock.js';
import { visibleKeysQuery, type KeysService } from '../keys/keys.service.js';
import { toMicro, type Micro } from '../money.js';
import { lastLocalDays } from '../billing/period.js';

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
    const buckets = lastLocalDays(this.deps.clock.now(), days, timeZone);
    if (!scope.keys) return buckets.map((b) => ({ date: b.date, costMicro: 0, requests: 0 }));
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

  async byModel(scope: UsageScope, from: Date | null = null): Promise<Breakdown[]> {
    return this.breakdown(scope, from, 'e.model', (q) => q.select('e.model as id', 'e.model as label').groupBy('e.model'));
  }

  /** Usage per member (the owner of each key). */
  async byUser(scope: UsageScope, from: Date | null = null): Promise<Breakdown[]> {
    return this.breakdown(scope, from, 'u.email', (q) =>
      q.join('users as u', 'u.id', 'e.user_id').select('e.user_id as id', 'u.email as label').groupBy('e.user_id', 'u.email'),
    );
  }

  async byKey(scope: UsageScope, from: Date | null = null): Promise<Breakdown[]> {
    return this.breakdown(scope, from, 'k.name', (q) =>
      q.join('api_keys as k', 'k.id', 'e.key_id').select('e.key_id as id', 'k.name as label').groupBy('e.key_id', 'k.name'),
    );
  }

  private events(keys: Knex.QueryBuilder, alias: string): Knex.QueryBuilder {
    return this.deps.db(`usage_events as ${alias}`).whereIn(`${alias}.key_id`, keys.clone().clearSelect().select('api_keys.id'));
  }

  private async breakdown(
    scope: UsageScope,
    from: Date | null,
    tieBreak: string,
    shape: (q: Knex.QueryBuilder) => Knex.QueryBuilder,
  ): Promise<Breakdown[]> {
    if (!scope.keys) return [];
    const db = this.deps.db;
    let query = shape(this.events(scope.keys, 'e'));
    if (from) query = query.where('e.created_at', '>=', from);
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
