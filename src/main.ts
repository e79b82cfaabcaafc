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

/** Builds every dependency of the app from the config: db → services → sessions. Tests pass their own db/clock. */
export function wire(config: Config, options: { db?: Db; clock?: Clock; logger?: Logger } = {}): AppDeps {
  const db = options.db ?? createDb({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  const sessions = createSessionManager(db, { secure: config.publicUrl?.startsWith('https:') ?? false });
  const services = createServices({
    db,
    clock: options.clock ?? systemClock,
    timeZone: config.timeZone,
    onUserDisabled: (userId) => sessions.invalidateUser(userId),
  });
  return { config, services, sessions, logger: options.logger ?? createLogger(config.logLevel), metrics: createMetrics() };
}

export interface Running {
  deps: AppDeps;
  server: Server;
  url: string;
  stop(): Promise<void>;
}

/** Boot: migrate, listen, start the scheduled jobs. */
export async function start(config: Config): Promise<Running> {
  const deps = wire(config);
  await migrateLatest(deps.services.db);
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  deps.logger.info({ url, database: config.databaseUrl ? 'mysql' : 'sqlite' }, 'ModelBridge listening');
  return {
    deps,
    server,
    url,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await deps.services.db.destroy();
    },
  };
}
