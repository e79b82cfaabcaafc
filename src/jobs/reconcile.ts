import { systemActor } from '../domain/actor.js';
import type { ReconcileService } from '../domain/billing/reconcile.service.js';
import type { Job } from './job.js';

/**
 * Every 5 minutes: cached balances, key spend and held amounts checked against the ledger, usage events and holds.
 * Each drift is logged (warn when corrected, error when it needs a person) and counted by kind.
 */
export function reconcileJob(reconcile: ReconcileService): Job {
  return {
    name: 'reconcile',
    schedule: '*/5 * * * *',
    leaseMs: 15 * 60_000,
    async run({ logger, metrics }) {
      const { candidates, drifts } = await reconcile.reconcile(systemActor);
      for (const d of drifts) {
        metrics.reconciliationDrift.inc({ kind: d.kind });
        const fields = { job: 'reconcile', kind: d.kind, target: d.target, cached: d.cached, actual: d.actual, difference: d.actual - d.cached };
        if (d.corrected) logger.warn(fields, 'reconciliation drift corrected');
        else logger.error(fields, 'usage events and ledger disagree; not corrected automatically');
      }
      const uncorrected = drifts.filter((d) => !d.corrected).length;
      return `${drifts.length - uncorrected} drifts corrected, ${uncorrected} need attention (${candidates} rows re-checked)`;
    },
  };
}
