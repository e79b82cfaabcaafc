import { Writable } from 'node:stream';
import type { Db } from '../../src/db/knex.js';
import type { Hold } from '../../src/domain/billing/metering.service.js';
import { ManualClock, type Clock } from '../../src/domain/clock.js';
import { randomBase62 } from '../../src/domain/ids.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createJobs } from '../../src/jobs/index.js';
import type { JobName } from '../../src/jobs/job.js';
import { JobRunner } from '../../src/jobs/runner.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { createTestDb, type TestDb } from './db.js';
import { NO_TOKENS } from '../../src/domain/models/pricing.js';

export const TIME_ZONE = 'Australia/Sydney';

/**
 * One "instance" for job tests: services, a runner and the jobs on a given knex pool and clock, with captured logs
 * and its own metrics. Two of these on two pools of the same database behave like two app processes.
 */
export function jobInstance(db: Db, clock: Clock) {
  const services = createServices({ db, clock, timeZone: TIME_ZONE });
  const metrics = createMetrics();
  const logs: string[] = [];
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );
  const runner = new JobRunner({ db, clock, logger, metrics });
  const jobs = createJobs(services);
  return {
    services,
    metrics,
    logs,
    runner,
    jobs,
    run: (name: JobName) => runner.run(jobs[name]),
  };
}

export type JobInstance = ReturnType<typeof jobInstance>;

/** A request through the metering path without the proxy: admission now, settlement at the given cost. */
export async function admit(services: Services, keyId: string, estimateMicro: number): Promise<Hold> {
  return services.metering.admit({
    requestId: `req_${randomBase62(16)}`,
    keyId,
    estimateMicro,
    model: 'test-model',
    provider: 'openai',
    endpoint: '/v1/chat/completions',
    streamed: false,
  });
}

export async function settle(services: Services, hold: Hold, costMicro: number) {
  return services.metering.settle(hold, {
    ...NO_TOKENS,
    inputTokens: 10,
    outputTokens: 20,
    costMicro,
    outcome: 'ok',
    estimated: false,
    httpStatus: 200,
    latencyMs: 5,
  });
}

export async function spend(services: Services, keyId: string, costMicro: number, estimateMicro = costMicro) {
  return settle(services, await admit(services, keyId, estimateMicro), costMicro);
}

/** The value of a counter or gauge series (0 when absent). */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  const match = data.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value ?? 0;
}

export async function countRows(db: Db, table: string, where: Record<string, unknown> = {}): Promise<number> {
  const row = await db(table).where(where).count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/** A job test file's world: a fresh database, a ManualClock at `start`, and one job instance on them. */
export async function jobFixture(start = '2026-11-26T00:00:00.000Z'): Promise<{ t: TestDb; clock: ManualClock; a: JobInstance }> {
  const t = await createTestDb();
  const clock = new ManualClock(start);
  return { t, clock, a: jobInstance(t.db, clock) };
}
