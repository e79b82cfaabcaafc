import type { Services } from '../domain/services.js';
import { deliverWebhooksJob } from './deliver-webhooks.js';
import { expireKeysJob } from './expire-keys.js';
import type { Job, JobName } from './job.js';
import { reconcileJob } from './reconcile.js';
import { releaseStaleHoldsJob } from './release-stale-holds.js';
import { rolloverJob } from './rollover.js';
import { rotateKeysJob } from './rotate-keys.js';

/** Every scheduled job of ModelBridge, wired to the domain services. */
export function createJobs(services: Services): Record<JobName, Job> {
  return {
    'expire-keys': expireKeysJob(services.keyExpiry),
    'release-holds': releaseStaleHoldsJob(services.metering),
    reconcile: reconcileJob(services.reconcile),
    rollover: rolloverJob(services.rollover, services.timeZone),
    'deliver-webhooks': deliverWebhooksJob(services.webhookDelivery),
    'rotate-keys': rotateKeysJob(services.keyRotation),
  };
}
