import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../logger.js';
import type { Job } from './job.js';
import type { JobRunner } from './runner.js';

export interface Scheduler {
  /** Stops the schedule and waits for runs in progress, so the database can close under none of them. */
  stop(): Promise<void>;
}

/**
 * Schedules each job in this process with node-cron. `noOverlap` makes a tick that comes while the previous run is
 * still going skip instead of stacking; the runner's lease keeps other instances out. Jobs read their schedule in
 * UTC unless they follow local wall time (roll-over), because a sub-hourly schedule in a DST zone pauses during
 * the repeated hour.
 */
export function startScheduler(jobs: Job[], runner: JobRunner, logger: Logger): Scheduler {
  const cronLogger = {
    info: (message: string) => logger.debug({ scheduler: 'node-cron' }, message),
    warn: (message: string) => logger.warn({ scheduler: 'node-cron' }, message),
    error: (message: string | Error, err?: Error) => logger.error({ scheduler: 'node-cron', err: err ?? message }, String(message)),
    debug: (message: string | Error) => logger.debug({ scheduler: 'node-cron' }, String(message)),
  };
  const tasks: ScheduledTask[] = jobs.map((job) => {
    const task = cron.createTask(
      job.schedule,
      async () => {
        await runner.run(job);
      },
      { name: `modelbridge:${job.name}`, noOverlap: true, timezone: job.timeZone ?? 'UTC', logger: cronLogger },
    );
    task.on('execution:overlap', () => logger.debug({ job: job.name }, 'job tick skipped: the previous run is still going'));
    void task.start();
    return task;
  });
  logger.info({ jobs: jobs.map((j) => `${j.name} (${j.schedule})`) }, 'scheduled jobs started');
  return {
    async stop() {
      for (const task of tasks) await task.destroy();
      await runner.idle();
    },
  };
}
