import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics, one registry per app instance (tests create several apps in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    proxyRequests: new Counter({
      name: 'modelbridge_proxy_requests_total',
      help: 'Proxied requests by endpoint and outcome (ok, upstream_error, client_aborted, or the refusal code).',
      labelNames: ['endpoint', 'outcome'] as const,
      registers: [registry],
    }),
    meteringSeconds: new Histogram({
      name: 'modelbridge_metering_duration_seconds',
      help: 'Time spent in the metering transactions of one request, by phase (admit, settle).',
      labelNames: ['phase'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    meteringErrors: new Counter({
      name: 'modelbridge_metering_errors_total',
      help: 'Settlements refused (a bug), or not committed before their answer completed (they go on being retried until they commit).',
      registers: [registry],
    }),
    holdsOutstanding: new Gauge({
      name: 'modelbridge_holds_outstanding',
      help: 'Holds of admitted, unsettled requests (all instances), as of the last scrape.',
      registers: [registry],
    }),
    jobRuns: new Counter({
      name: 'modelbridge_job_runs_total',
      help: 'Scheduled job runs by job and result (ok, failed, skipped = another instance held the lock).',
      labelNames: ['job', 'result'] as const,
      registers: [registry],
    }),
    reconciliationDrift: new Counter({
      name: 'modelbridge_reconciliation_drift_total',
      help: 'Cached balances or key spend found different from the ledger and corrected, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
