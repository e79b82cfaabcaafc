import { hostname } from 'node:os';
import type { Queryable } from '../../db/knex.js';
import { toDate, toDateOrNull } from '../../db/rows.js';
import { randomBase62 } from '../ids.js';

/**
 * A lease per scheduled job in `job_locks`, so one instance at a time runs each job, on MySQL and SQLite alike.
 *
 * Taking the lease is one conditional UPDATE (`… WHERE locked_until IS NULL OR locked_until <= now`): the database
 * serialises the two writers and exactly one sees an affected row. A crashed holder's lease simply runs out.
 * docs/operations.md explains why this beats MySQL GET_LOCK here. The lease is the efficiency layer; correctness
 * never depends on it: every job changes each row with its own guard (row lock + re-check, or a conditional
 * update), so even two overlapping runs could not change anything twice.
 */

export interface JobStatus {
  name: string;
  /** Another run holds the lease right now (as of `now`). */
  running: boolean;
  lastStartedAt: Date | null;
  lastFinishedAt: Date | null;
  /** "ok: <summary>" or "failed: <message>", null before the first run. */
  lastResult: string | null;
  lastOk: boolean | null;
}

/** A lease owner id: host, process and a random part, so every run is distinguishable in the table. */
export function newLeaseOwner(): string {
  return `${hostname().slice(0, 30)}:${process.pid}:${randomBase62(8)}`.slice(0, 64);
}

export async function acquireJobLease(q: Queryable, name: string, owner: string, now: Date, leaseMs: number): Promise<boolean> {
  // The row must exist for the conditional UPDATE to find; inserting it is idempotent (two inserts race harmlessly).
  await q('job_locks').insert({ name, owner: null, locked_until: null }).onConflict('name').ignore();
  const taken = await q('job_locks')
    .where({ name })
    .andWhere((w) => w.whereNull('locked_until').orWhere('locked_until', '<=', now))
    .update({ owner, locked_until: new Date(now.getTime() + leaseMs), last_started_at: now });
  return taken === 1;
}

/** Extends a held lease (long runs); false when it was lost (it ran out and another instance took it). */
export async function renewJobLease(q: Queryable, name: string, owner: string, now: Date, leaseMs: number): Promise<boolean> {
  const renewed = await q('job_locks').where({ name, owner }).update({ locked_until: new Date(now.getTime() + leaseMs) });
  return renewed === 1;
}

/** Ends a run: frees the lease and records its result, unless the lease was lost to another instance meanwhile. */
export async function releaseJobLease(q: Queryable, name: string, owner: string, now: Date, result: string): Promise<void> {
  await q('job_locks')
    .where({ name, owner })
    .update({ owner: null, locked_until: null, last_finished_at: now, last_result: result.slice(0, 255) });
}

/** Job status for the portal's admin page and the metrics scrape. */
export async function listJobStatus(q: Queryable, now: Date): Promise<JobStatus[]> {
  const rows = await q('job_locks').orderBy('name');
  return rows.map((r: Record<string, unknown>) => {
    const lockedUntil = toDateOrNull(r.locked_until);
    const lastResult = (r.last_result as string | null) ?? null;
    return {
      name: r.name as string,
      running: lockedUntil !== null && lockedUntil.getTime() > now.getTime(),
      lastStartedAt: r.last_started_at ? toDate(r.last_started_at) : null,
      lastFinishedAt: r.last_finished_at ? toDate(r.last_finished_at) : null,
      lastResult,
      lastOk: lastResult === null ? null : lastResult.startsWith('ok'),
    };
  });
}
