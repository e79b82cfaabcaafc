import type { MeteringService } from '../domain/billing/metering.service.js';
import { releaseStaleHolds } from '../domain/billing/stale-holds.js';
import type { Job } from './job.js';

/**
 * Every minute: holds past their deadline — nobody renews them: the process that admitted them died, or the admission
 * reply was lost — are released as `abandoned`. With the hold TTL (MeteringDeps.holdTtlMs) this bounds how long an
 * orphaned hold can block a key: TTL + one minute.
 */
export function releaseStaleHoldsJob(metering: MeteringService): Job {
  return {
    name: 'release-holds',
    schedule: '* * * * *',
    leaseMs: 5 * 60_000,
    async run({ logger }) {
      const result = await releaseStaleHolds(metering);
      for (const { requestId, error } of result.failed) logger.error({ err: error, job: 'release-holds', requestId }, 'releasing a stale hold failed');
      const summary = `${result.released} released, ${result.alreadySettled} already settled`;
      // Failures make the run fail (so it shows in metrics and job status); the holds stay for the next run.
      if (result.failed.length) throw new Error(`${summary}, ${result.failed.length} failed`);
      return summary;
    },
  };
}
