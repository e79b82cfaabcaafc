import type { KeyRotationService } from '../domain/keys/rotation.service.js';
import type { Job } from './job.js';

/**
 * Every minute: `key.rotation_due` warnings (7 days, 1 day ahead, overdue) and the scheduled rotations that are due
 * (docs/webhooks.md, "Scheduled rotation"). A job of its own, not part of expire-keys: a slow receiver of a new
 * secret must not hold up expiry and retirement.
 */
export function rotateKeysJob(rotation: KeyRotationService): Job {
  return {
    name: 'rotate-keys',
    schedule: '* * * * *',
    leaseMs: 5 * 60_000,
    async run() {
      const r = await rotation.run();
      return `${r.warned} rotation-due warnings, ${r.rotated.length} rotated by schedule, ${r.failed.length} not delivered (retried next run)`;
    },
  };
}
