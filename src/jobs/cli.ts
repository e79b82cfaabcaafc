import type { Config } from '../config.js';
import { createDb, migrateLatest } from '../db/knex.js';
import { systemClock } from '../domain/clock.js';
import { createServices } from '../domain/services.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { createJobs } from './index.js';
import { JOB_NAMES, type JobName } from './job.js';
import { JobRunner } from './runner.js';

/**
 * `npm run cli -- jobs:run <name|all>`: runs jobs once, now, through the same runner as the scheduler (so the lease
 * keeps it from overlapping a scheduled run on any instance). One line per job on stderr; the exit code is non-zero
 * when a job failed. A job skipped because another instance is running it is not a failure: it is being done.
 */
export async function runJobsFromCli(config: Config, name: string | undefined): Promise<void> {
  const names: JobName[] = name === 'all' ? [...JOB_NAMES] : JOB_NAMES.filter((n) => n === name);
  if (!names.length) {
    process.stderr.write(`Usage: npm run cli -- jobs:run <${JOB_NAMES.join('|')}|all>\n`);
    process.exitCode = 2;
    return;
  }
  const db = createDb({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  try {
    await migrateLatest(db);
    const services = createServices({ db, clock: systemClock, timeZone: config.timeZone, webhooks: { allowPrivate: config.webhookAllowPrivate } });
    // Logs go to stderr like everything else the CLI says. At the default level the one-line results below replace
    // the runner's info lines; warnings (drift) and errors still show.
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
    const runner = new JobRunner({ db, clock: systemClock, logger, metrics: createMetrics() });
    const jobs = createJobs(services);
    for (const jobName of names) {
      const run = await runner.run(jobs[jobName]);
      process.stderr.write(`${run.job}: ${run.result} — ${run.summary} (${run.durationMs} ms)\n`);
      if (run.result === 'failed') process.exitCode = 1;
    }
  } finally {
    await db.destroy();
  }
}
