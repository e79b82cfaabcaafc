import type { Knex } from 'knex';
import { isMysql, type Db, type Queryable } from '../../db/knex.js';
import { toBool, toDate, toInt } from '../../db/rows.js';
import type { Actor } from '../actor.js';
import type { Clock } from '../clock.js';
import { badInput } from '../errors.js';
import { toMicro, type Micro } from '../money.js';
import { visibleKeysQuery, type KeysService } from '../keys/keys.service.js';
import { NO_TOKENS, type TokenUsage } from '../models/pricing.js';

/** One metered request; its token counts by kind (TokenUsage: `inputTokens` is the uncached input only). */
export interface UsageEvent extends TokenUsage {
  id: string;
  requestId: string;
  keyId: string;
  userId: string;
  teamId: string | null;
  model: string;
  provider: string;
  endpoint: string;
  costMicro: Micro;
  /** How the cost split over the payer's buckets. */
  split: { includedMicro: Micro; prepaidMicro: Micro; overageMicro: Micro; teamMicro: Micro };
  outcome: string;
  estimated: boolean;
  httpStatus: number;
  latencyMs: number;
  streamed: boolean;
  startedAt: Date;
  createdAt: Date;
}

export interface UsageFilter {
  keyId?: string;
  teamId?: string;
  /** Installation admins only: every event of the installation. */
  all?: boolean;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  /** Only events of keys carrying this tag (a key's tags as they are now). */
  tag?: string;
  /** The id of the last event of the previous page. */
  cursor?: string;
  limit?: number;
}

export interface UsageTotals extends TokenUsage {
  requests: number;
  costMicro: Micro;
}

/** The token kinds, as usage_events columns. */
const TOKEN_COLUMNS: Record<keyof TokenUsage, string> = {
  inputTokens: 'input_tokens',
  cachedInputTokens: 'cached_input_tokens',
  cacheWrite5mTokens: 'cache_write_5m_tokens',
  cacheWrite1hTokens: 'cache_write_1h_tokens',
  outputTokens: 'output_tokens',
  reasoningTokens: 'reasoning_tokens',
};
const TOKEN_KINDS = Object.keys(TOKEN_COLUMNS) as Array<keyof TokenUsage>;

/** The token counts of a row whose fields are named by `name` (the columns, or the aliases of their sums). */
function tokensOf(r: Record<string, unknown>, name: (kind: keyof TokenUsage) => string): TokenUsage {
  const n = (kind: keyof TokenUsage) => toInt(r[name(kind)]);
  return {
    inputTokens: n('inputTokens'), cachedInputTokens: n('cachedInputTokens'), cacheWrite5mTokens: n('cacheWrite5mTokens'),
    cacheWrite1hTokens: n('cacheWrite1hTokens'), outputTokens: n('outputTokens'), reasoningTokens: n('reasoningTokens'),
  };
}

export interface KeyUsage {
  keyId: string;
  from: Date;
  to: Date;
  totals: UsageTotals;
  /** Calendar days in the installation time zone (YYYY-MM-DD), oldest first; days without traffic are omitted. */
  byDay: Array<UsageTotals & { day: string }>;
  /** Most expensive first (then by name). */
  byModel: Array<UsageTotals & { model: string }>;
}

export const USAGE_PAGE_MAX = 500;
const DEFAULT_RANGE_MS = 30 * 86_400_000;
const MAX_RANGE_MS = 400 * 86_400_000;
/** Every UTC offset in use is a multiple of 15 minutes, so 15-minute buckets fold exactly into local days. */
const BUCKET_MS = 15 * 60_000;

export interface UsageDeps {
  db: Db;
  clock: Clock;
  timeZone: string;
  keys: KeysService;
}

/** Reads usage events with the same visibility as the keys they belong to. */
export class UsageService {
  constructor(private readonly deps: UsageDeps) {}

  async list(filter: UsageFilter, actor: Actor, q: Queryable = this.deps.db): Promise<{ events: UsageEvent[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), USAGE_PAGE_MAX);
    let query = q('usage_events').orderBy('id', 'desc').limit(limit + 1);
    if (filter.keyId) {
      // Throws "not found" unless the actor may see this key.
      await this.deps.keys.get(filter.keyId, actor, q);
      query = query.where('key_id', filter.keyId);
      if (filter.teamId) query = query.where('team_id', filter.teamId);
    } else {
      const visible = await visibleKeysQuery(q, filter, actor);
      if (!visible) return { events: [], nextCursor: null };
      query = query.whereIn('key_id', visible.query.select('api_keys.id'));
    }
    if (filter.tag) query = query.whereIn('key_id', q('key_tags').where('tag', filter.tag).select('key_id'));
    query = inRange(query, filter.from, filter.to);
    if (filter.cursor !== undefined) {
      if (!/^\d{1,19}$/.test(filter.cursor)) throw badInput('That cursor is not one this API returned.');
      query = query.where('id', '<', filter.cursor);
    }
    const rows: Array<Record<string, unknown>> = await query;
    const page = rows.slice(0, limit).map(eventFromRow);
    return { events: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  /** Totals for one key over a range (default: the last 30 days), per local day and per model. */
  async keyUsage(keyId: string, range: { from?: Date; to?: Date }, actor: Actor, q: Queryable = this.deps.db): Promise<KeyUsage> {
    await this.deps.keys.get(keyId, actor, q);
    const to = range.to ?? this.deps.clock.now();
    const from = range.from ?? new Date(to.getTime() - DEFAULT_RANGE_MS);
    if (from.getTime() >= to.getTime()) throw badInput('"from" must be before "to".');
    if (to.getTime() - from.getTime() > MAX_RANGE_MS) throw badInput('Ask for at most 400 days at a time.');
    const bucket = isMysql(q) ? q.raw('FLOOR(UNIX_TIMESTAMP(created_at) / 900)') : q.raw('CAST(created_at / 900000 AS INTEGER)');
    const rows: Array<Record<string, unknown>> = await inRange(q('usage_events').where('key_id', keyId), from, to)
      .groupBy('bucket', 'model')
      .select({ bucket, model: 'model' })
      .count({ requests: '*' })
      .sum({ ...TOKEN_COLUMNS, cost: 'cost_micro' });
    const days = new Map<string, UsageTotals>();
    const models = new Map<string, UsageTotals>();
    const totals = emptyTotals();
    const dayOf = new Intl.DateTimeFormat('en-CA', { timeZone: this.deps.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    for (const r of rows) {
      const t: UsageTotals = { requests: toInt(r.requests), ...tokensOf(r, (kind) => kind), costMicro: toMicro(r.cost) };
      const day = dayOf.format(new Date(toInt(r.bucket) * BUCKET_MS));
      add(days, day, t);
      add(models, r.model as string, t);
      addTo(totals, t);
    }
    return {
      keyId,
      from,
      to,
      totals,
      byDay: [...days].sort(([a], [b]) => a.localeCompare(b)).map(([day, t]) => ({ day, ...t })),
      byModel: [...models].sort(([ma, a], [mb, b]) => b.costMicro - a.costMicro || ma.localeCompare(mb)).map(([model, t]) => ({ model, ...t })),
    };
  }
}

function inRange(query: Knex.QueryBuilder, from: Date | undefined, to: Date | undefined): Knex.QueryBuilder {
  let q = query;
  if (from) q = q.where('created_at', '>=', from);
  if (to) q = q.where('created_at', '<', to);
  return q;
}

function emptyTotals(): UsageTotals {
  return { requests: 0, ...NO_TOKENS, costMicro: 0 };
}

function addTo(target: UsageTotals, t: UsageTotals): void {
  target.requests += t.requests;
  for (const kind of TOKEN_KINDS) target[kind] += t[kind];
  target.costMicro += t.costMicro;
}

function add(map: Map<string, UsageTotals>, key: string, t: UsageTotals): void {
  const existing = map.get(key) ?? emptyTotals();
  addTo(existing, t);
  map.set(key, existing);
}

export function eventFromRow(r: Record<string, unknown>): UsageEvent {
  return {
    id: String(r.id),
    requestId: r.request_id as string,
    keyId: r.key_id as string,
    userId: r.user_id as string,
    teamId: (r.team_id as string | null) ?? null,
    model: r.model as string,
    provider: r.provider as string,
    endpoint: r.endpoint as string,
    ...tokensOf(r, (kind) => TOKEN_COLUMNS[kind]),
    costMicro: toMicro(r.cost_micro),
    split: {
      includedMicro: toMicro(r.included_micro),
      prepaidMicro: toMicro(r.prepaid_micro),
      overageMicro: toMicro(r.overage_micro),
      teamMicro: toMicro(r.team_micro),
    },
    outcome: r.outcome as string,
    estimated: toBool(r.estimated),
    httpStatus: toInt(r.http_status),
    latencyMs: toInt(r.latency_ms),
    streamed: toBool(r.streamed),
    startedAt: toDate(r.started_at),
    createdAt: toDate(r.created_at),
  };
}
