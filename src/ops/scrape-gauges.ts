import { Gauge, type Registry } from 'prom-client';
import type { AppDeps } from '../app-deps.js';
import { listJobStatus } from '../domain/jobs/job-locks.js';

const JOB_LAST_SUCCESS = 'modelbridge_job_last_success_timestamp_seconds';
const JOB_LAST_FAILED = 'modelbridge_job_last_run_failed';
const METERING_TRANSACTIONS = 'modelbridge_metering_transactions';
const SETTLEMENTS_PENDING = 'modelbridge_settlements_pending';
const SETTLEMENT_RETRIES = 'modelbridge_settlement_retries';

/**
 * Gauges read from the database at scrape time, so they describe the whole installation (every instance), not just
 * the one that happens to be scraped: outstanding holds, and each job's last result as recorded in job_locks. Also
 * this instance's metering transactions by path, and its settlements pending and retried.
 */
export async function refreshScrapeGauges(deps: AppDeps): Promise<void> {
  const { db, clock } = deps.services;
  const holds = await db('holds').count({ n: '*' }).first();
  deps.metrics.holdsOutstanding.set(Number(holds?.n ?? 0));

  const transactions = gauge(deps.metrics.registry, METERING_TRANSACTIONS,
    'Metering transactions of this instance since it started, by path: one_round_trip (planned from the rows as this instance last wrote them, checked under lock) or read_then_write (two round trips).',
    ['path']);
  transactions.set({ path: 'one_round_trip' }, deps.services.metering.transactions.oneRoundTrip);
  transactions.set({ path: 'read_then_write' }, deps.services.metering.transactions.readThenWrite);
  const { settlements } = deps.services.metering;
  gauge(deps.metrics.registry, SETTLEMENTS_PENDING, 'Settlements of this instance not yet committed (each is retried until it commits).', [])
    .set(settlements.pending);
  gauge(deps.metrics.registry, SETTLEMENT_RETRIES, 'Settlement attempts of this instance that failed and were tried again, since it started.', [])
    .set(settlements.retried);

  const lastSuccess = gauge(deps.metrics.registry, JOB_LAST_SUCCESS, 'When each job last finished successfully on any instance (unix seconds).');
  const lastFailed = gauge(deps.metrics.registry, JOB_LAST_FAILED, 'Whether the most recent finished run of each job failed (1) or not (0).');
  for (const job of await listJobStatus(db, clock.now())) {
    if (job.lastOk === null) continue;
    lastFailed.set({ job: job.name }, job.lastOk ? 0 : 1);
    if (job.lastOk && job.lastFinishedAt) lastSuccess.set({ job: job.name }, Math.floor(job.lastFinishedAt.getTime() / 1000));
  }
}

/** Registered on first use in the app's own registry (tests run several apps, each with its registry). */
function gauge<L extends string = 'job'>(registry: Registry, name: string, help: string, labelNames: readonly L[] = ['job'] as unknown as L[]): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}
