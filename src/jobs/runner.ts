import type { Db } from '../db/knex.js';
import type { Clock } from '../domain/clock.js';
import { acquireJobLease, newLeaseOwner, releaseJobLease, renewJobLease } from '../domain/jobs/job-locks.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Job } from './job.js';

export interface JobRunnerDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export interface JobRun {
  job: string;
  /** skipped: this or another instance was already running the job. */
  result: 'ok' | 'failed' | 'skipped';
  summary: string;
  durationMs: number;
}

/**
 * Runs jobs safely: one run per job at a time in this process, one at a time across processes (the job_locks lease),
 * a result recorded for the portal, a log line and a metric. run() never throws — a failing job must not take the
 * server down with it; it is logged, counted, recorded, and tried again at its next tick.
 */
export class JobRunner {
  private readonly running = new Map<string, Promise<JobRun>>();

  constructor(private readonly deps: JobRunnerDeps) {}

  run(job: Job): Promise<JobRun> {
    if (this.running.has(job.name)) return Promise.resolve(this.skipped(job, 'already running in this process', 0));
    const run = this.runExclusive(job).finally(() => this.running.delete(job.name));
    this.running.set(job.name, run);
    return run;
  }

  /** Resolves when every run in progress has finished (used on shutdown, before the database pool closes). */
  async idle(): Promise<void> {
    await Promise.all([...this.running.values()]);
  }

  private async runExclusive(job: Job): Promise<JobRun> {
    const { db, clock, logger, metrics } = this.deps;
    const started = Date.now();
    const owner = newLeaseOwner();
    const elapsed = () => Date.now() - started;
    let acquired: boolean;
    try {
      acquired = await acquireJobLease(db, job.name, owner, clock.now(), job.leaseMs);
    } catch (err) {
      return this.failed(job, err, elapsed());
    }
    if (!acquired) return this.skipped(job, 'another instance holds the lease', elapsed());

    // Long runs keep their lease; if renewing fails the run still finishes (every change it makes is guarded).
    const heartbeat = setInterval(() => {
      renewJobLease(db, job.name, owner, clock.now(), job.leaseMs)
        .then((kept) => kept || logger.warn({ job: job.name }, 'job lease lost while running'))
        .catch((err: unknown) => logger.warn({ err, job: job.name }, 'renewing the job lease failed'));
    }, Math.max(1000, job.leaseMs / 3));
    heartbeat.unref();

    let outcome: JobRun;
    try {
      const summary = await job.run({ logger, metrics });
      outcome = { job: job.name, result: 'ok', summary, durationMs: elapsed() };
      metrics.jobRuns.inc({ job: job.name, result: 'ok' });
      logger.info({ job: job.name, durationMs: outcome.durationMs, summary }, 'job finished');
    } catch (err) {
      outcome = this.failed(job, err, elapsed());
    } finally {
      clearInterval(heartbeat);
    }
    try {
      await releaseJobLease(db, job.name, owner, clock.now(), `${outcome.result}: ${outcome.summary}`);
    } catch (err) {
      // The lease runs out by itself; the next run after that goes ahead.
      logger.warn({ err, job: job.name }, 'releasing the job lease failed');
    }
    return outcome;
  }

  private failed(job: Job, err: unknown, durationMs: number): JobRun {
    this.deps.metrics.jobRuns.inc({ job: job.name, result: 'failed' });
    this.deps.logger.error({ err, job: job.name, durationMs }, 'job failed');
    return { job: job.name, result: 'failed', summary: err instanceof Error ? err.message : String(err), durationMs };
  }

  private skipped(job: Job, why: string, durationMs: number): JobRun {
    this.deps.metrics.jobRuns.inc({ job: job.name, result: 'skipped' });
    this.deps.logger.debug({ job: job.name }, `job skipped: ${why}`);
    return { job: job.name, result: 'skipped', summary: why, durationMs };
  }
}
