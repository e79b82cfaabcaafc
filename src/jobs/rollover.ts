import type { RolloverService } from '../domain/billing/rollover.service.js';
import type { Job } from './job.js';

/**
 * Hourly, on the hour of the installation's wall clock (so at local midnight on the 1st): personal balances still in
 * an earlier billing period get their statement written and included / overage usage reset.
 */
export function rolloverJob(rollover: RolloverService, timeZone: string): Job {
  return {
    name: 'rollover',
    schedule: '0 * * * *',
    timeZone,
    leaseMs: 30 * 60_000,
    async run() {
      const { period, rolled } = await rollover.rollDuePeriods();
      return `${rolled.length} balances rolled into the period starting ${period.start.toISOString()}`;
    },
  };
}
