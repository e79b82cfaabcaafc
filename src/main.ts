import type { Server } from 'node:http';
import { createApp } from './app.js';
import type { AppDeps } from './app-deps.js';
import { createSessionManager } from './auth/sessions.js';
import type { Config } from './config.js';
import { createDb, migrateLatest, type Db } from './db/knex.js';
import { systemClock, type Clock } from './domain/clock.js';
import { createServices } from './domain/services.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { createJobs } from './jobs/index.js';
import { JobRunner } from './jobs/runner.js';
import { startScheduler, type Scheduler } from './jobs/scheduler.js';

/** Builds every dependency of the app from the config: db → services → sessions. Tests pass their own db/clock. */
export function wire(config: Config, options: { db?: Db; clock?: Clock; logger?: Logger } = {}): AppDeps {
  const db = options.db ?? createDb({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  const sessions = createSessionManager(db, { secure: config.publicUrl?.startsWith('https:') ?? false });
  const services = createServices({
    db,
    clock: options.clock ?? systemClock,
    timeZone: config.timeZone,
    holdTtlMs: config.holdTtlMs,
    onUserDisabled: (userId) => sessions.invalidateUser(userId),
    webhooks: { allowPrivate: config.webhookAllowPrivate },
  });
  return { config, services, sessions, logger: options.logger ?? createLogger(config.logLevel), metrics: createMetrics() };
}

export interface Running {
  deps: AppDeps;
  server: Server;
  url: string;
  stop(): Promise<void>;
}

/** Boot: migrate (unless a cluster primary already did), listen, start the scheduled jobs. */
export async function start(config: Config, options: { migrate?: boolean } = {}): Promise<Running> {
  const deps = wire(config);
  if (options.migrate ?? true) await migrateLatest(deps.services.db);
  const app = createApp(deps);
  const server = await listen(app, config);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  deps.logger.info({ url, database: config.databaseUrl ? 'mysql' : 'sqlite' }, 'ModelBridge listening');
  const scheduler = config.jobsEnabled ? startJobs(deps) : null;
  if (!scheduler) deps.logger.info('scheduled jobs are off (MODELBRIDGE_JOBS=0)');
  return {
    deps,
    server,
    url,
    async stop() {
      // Jobs first: a run in progress finishes before the pool it uses closes.
      await scheduler?.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await deps.services.metering.shutdown();
      await deps.services.refusals.shutdown().catch((err: unknown) => deps.logger.warn({ err }, 'refusal counts could not be written on shutdown'));
      await deps.services.db.destroy();
    },
  };
}

/**
 * Idle keep-alive connections stay open longer than the clients' and load balancers' own idle timeouts (undici 4 s,
 * an AWS ALB 60 s), so it is always the client that closes an idle connection: a server that closes first races a
 * request the client is just sending on it, which then fails with ECONNRESET (a POST is not retried).
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
export function tuneServer(server: Server): Server {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Must exceed keepAliveTimeout, or a connection may be cut while a new request's headers arrive.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  return server;
}

/** Express 5 hands a listen error (EADDRINUSE, EACCES) to the callback: turn it into one that names the address. */
function listen(app: ReturnType<typeof createApp>, config: Config): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, (err?: Error) => {
      if (!err) return resolve(tuneServer(s));
      const code = (err as NodeJS.ErrnoException).code;
      const where = `${config.host}:${config.port}`;
      const why =
        code === 'EADDRINUSE' ? `port ${config.port} is already in use (another ModelBridge?); set PORT to a free port`
        : code === 'EACCES' ? `port ${config.port} needs privileges; use a port above 1023 behind a reverse proxy`
        : err.message;
      reject(new ListenError(`cannot listen on ${where}: ${why}`));
    });
  });
}

export class ListenError extends Error {}

/** The scheduled jobs of this instance (SPEC §6); every instance runs them, the job_locks lease picks one per run. */
export function startJobs(deps: AppDeps): Scheduler {
  const { services, logger, metrics } = deps;
  const runner = new JobRunner({ db: services.db, clock: services.clock, logger, metrics });
  return startScheduler(Object.values(createJobs(services)), runner, logger);
}
