import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** The names operators use: in `npm run cli -- jobs:run <name>`, in job_locks, in logs and metric labels. */
export const JOB_NAMES = ['expire-keys', 'release-holds', 'reconcile', 'rollover', 'deliver-webhooks', 'rotate-keys'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export interface JobContext {
  logger: Logger;
  metrics: Metrics;
}

/** A scheduled job: what it does, when, and how long one run may hold its lease before renewing it. */
export interface Job {
  name: string;
  /** node-cron expression. */
  schedule: string;
  /** Time zone the schedule is read in; UTC unless the job follows local wall time. */
  timeZone?: string;
  /** Lease length; the runner renews it every third of this while the job runs. */
  leaseMs: number;
  /** Does the work and returns a one-line summary. Must be idempotent: safe to run again, or concurrently. */
  run(ctx: JobContext): Promise<string>;
}
