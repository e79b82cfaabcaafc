import type { Db } from '../../db/knex.js';
import { isMysql } from '../../db/knex.js';
import { toDate } from '../../db/rows.js';
import type { Actor } from '../actor.js';
import { lastLocalDays, localDateOf } from '../billing/period.js';
import type { Clock } from '../clock.js';
import type { KeysService } from './keys.service.js';

/** How many of its latest refusals each key keeps (in memory before a flush, and in the database). */
export const REFUSAL_SAMPLES_PER_KEY = 20;
/** How often refusals noted in memory are written to the database. */
export const REFUSAL_FLUSH_MS = 10_000;
/**
 * The most distinct (key, day, status, code) counters held between flushes: more distinct refusals than that in
 * one interval are counted in `dropped` rather than remembered, so memory stays bounded too.
 */
export const REFUSAL_MAX_COUNTERS = 10_000;

export interface Refusal {
  keyId: string;
  status: number;
  code: string;
  model: string | null;
}

export interface RefusalSample {
  at: Date;
  status: number;
  code: string;
  model: string | null;
}

export interface KeyRefusals {
  /** Refusals per local day and code, the last `days` days, oldest first; days without refusals left out. */
  byDay: Array<{ day: string; status: number; code: string; refusals: number }>;
  /** The latest refusals, newest first (at most REFUSAL_SAMPLES_PER_KEY). */
  recent: RefusalSample[];
}

export interface RefusalsDeps {
  db: Db;
  clock: Clock;
  timeZone: string;
  keys: KeysService;
  flushMs?: number;
}

const dayOf = (at: Date, timeZone: string) => {
  const { year, month, day } = localDateOf(at, timeZone);
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
};

/**
 * Refused proxy requests of known keys, with a bounded write cost: a refusal is only counted in memory (per key,
 * local day, status and code) and remembered among its key's latest few; a flush every REFUSAL_FLUSH_MS writes
 * one upsert per counter, one insert of at most REFUSAL_SAMPLES_PER_KEY rows per key and one trim per key. A key
 * hammered with thousands of refused requests therefore costs the same few writes per interval as one refusal.
 * Requests without a known key (no owner) are never recorded.
 */
export class RefusalsService {
  private counters = new Map<string, { keyId: string; day: string; status: number; code: string; n: number }>();
  private samples = new Map<string, RefusalSample[]>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Refusals not remembered because REFUSAL_MAX_COUNTERS was reached (they are still answered, only not counted). */
  dropped = 0;

  constructor(private readonly deps: RefusalsDeps) {}

  /** Notes one refusal in memory; never touches the database, never throws. */
  note(refusal: Refusal): void {
    const at = this.deps.clock.now();
    const day = dayOf(at, this.deps.timeZone);
    const code = refusal.code.slice(0, 64);
    const id = `${refusal.keyId}|${day}|${refusal.status}|${code}`;
    const counter = this.counters.get(id);
    if (counter) counter.n++;
    else if (this.counters.size >= REFUSAL_MAX_COUNTERS) {
      this.dropped++;
      return;
    } else this.counters.set(id, { keyId: refusal.keyId, day, status: refusal.status, code, n: 1 });
    const list = this.samples.get(refusal.keyId) ?? [];
    list.push({ at, status: refusal.status, code, model: refusal.model?.slice(0, 200) ?? null });
    if (list.length > REFUSAL_SAMPLES_PER_KEY) list.shift();
    this.samples.set(refusal.keyId, list);
    if (!this.timer) {
      this.timer = setInterval(() => void this.flush().catch(() => undefined), this.deps.flushMs ?? REFUSAL_FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes what was noted since the last flush. A failed flush puts its counts back for the next one. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.counters.size) return;
    const counters = [...this.counters.values()];
    const samples = [...this.samples.entries()];
    this.counters = new Map();
    this.samples = new Map();
    this.flushing = this.write(counters, samples).catch((err: unknown) => {
      for (const c of counters) {
        const id = `${c.keyId}|${c.day}|${c.status}|${c.code}`;
        const now = this.counters.get(id);
        if (now) now.n += c.n;
        else this.counters.set(id, c);
      }
      throw err;
    });
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  private async write(
    counters: Array<{ keyId: string; day: string; status: number; code: string; n: number }>,
    samples: Array<[string, RefusalSample[]]>,
  ): Promise<void> {
    const { db } = this.deps;
    // Keys deleted since (cascade) would fail the foreign key: write only keys that still exist.
    const keyIds = [...new Set(counters.map((c) => c.keyId))];
    const existing = new Set<string>((await db('api_keys').whereIn('id', keyIds).pluck('id')) as string[]);
    const rows = counters.filter((c) => existing.has(c.keyId))
      .map((c) => ({ key_id: c.keyId, day: c.day, status: c.status, code: c.code, refusals: c.n }));
    if (!rows.length) return;
    await db('key_refusal_counts').insert(rows).onConflict(['key_id', 'day', 'status', 'code'])
      .merge({ refusals: db.raw(isMysql(db) ? 'refusals + VALUES(refusals)' : 'refusals + excluded.refusals') });
    const sampleRows = samples.filter(([keyId]) => existing.has(keyId))
      .flatMap(([keyId, list]) => list.map((s) => ({ key_id: keyId, at: s.at, status: s.status, code: s.code, model: s.model })));
    if (sampleRows.length) await db('key_refusal_samples').insert(sampleRows);
    for (const [keyId] of samples) {
      if (!existing.has(keyId)) continue;
      const keep = await db('key_refusal_samples').where({ key_id: keyId }).orderBy('id', 'desc')
        .offset(REFUSAL_SAMPLES_PER_KEY - 1).first('id');
      if (keep) await db('key_refusal_samples').where({ key_id: keyId }).where('id', '<', keep.id).delete();
    }
  }

  /** Refusals of a key its viewer may see: counts per day over the last `days` days and the latest refusals. */
  async forKey(keyId: string, actor: Actor, days = 30): Promise<KeyRefusals> {
    await this.deps.keys.get(keyId, actor);
    const { db, clock, timeZone } = this.deps;
    const range = lastLocalDays(clock.now(), days, timeZone);
    const rows = await db('key_refusal_counts').where({ key_id: keyId }).where('day', '>=', range[0]!.date).orderBy(['day', 'status', 'code']);
    const counts = new Map<string, { day: string; status: number; code: string; refusals: number }>();
    for (const r of rows) counts.set(`${r.day}|${r.status}|${r.code}`, { day: r.day as string, status: Number(r.status), code: r.code as string, refusals: Number(r.refusals) });
    // This instance's refusals not flushed yet count too, so the page is current right away.
    for (const c of this.counters.values()) {
      if (c.keyId !== keyId || c.day < range[0]!.date) continue;
      const id = `${c.day}|${c.status}|${c.code}`;
      const known = counts.get(id);
      if (known) known.refusals += c.n;
      else counts.set(id, { day: c.day, status: c.status, code: c.code, refusals: c.n });
    }
    const stored = (await db('key_refusal_samples').where({ key_id: keyId }).orderBy('id', 'desc').limit(REFUSAL_SAMPLES_PER_KEY))
      .map((r: Record<string, unknown>) => ({ at: toDate(r.at), status: Number(r.status), code: r.code as string, model: (r.model as string | null) ?? null }));
    const recent = [...(this.samples.get(keyId) ?? [])].reverse().concat(stored).slice(0, REFUSAL_SAMPLES_PER_KEY);
    const byDay = [...counts.values()].sort((a, b) => (a.day === b.day ? a.code.localeCompare(b.code) : a.day.localeCompare(b.day)));
    return { byDay, recent };
  }

  /** Stops the timer and writes what is left (on shutdown). */
  async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
