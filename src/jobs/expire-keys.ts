import { systemActor } from '../domain/actor.js';
import type { KeyExpiryService } from '../domain/keys/expiry.service.js';
import type { Job } from './job.js';

/** Every minute: keys past their expiry get stored status `expired`, rotated keys past their grace `revoked`. */
export function expireKeysJob(expiry: KeyExpiryService): Job {
  return {
    name: 'expire-keys',
    schedule: '* * * * *',
    leaseMs: 5 * 60_000,
    async run() {
      const { expired, retired } = await expiry.expireDueKeys(systemActor);
      return `${expired.length} expired, ${retired.length} retired after rotation`;
    },
  };
}
