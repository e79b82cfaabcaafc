import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { createApp } from '../../src/app.js';
import type { AppDeps } from '../../src/app-deps.js';
import { parseConfig, type Config } from '../../src/config.js';
import { ManualClock, systemClock, type Clock } from '../../src/domain/clock.js';
import { createLogger } from '../../src/logger.js';
import { tuneServer, wire } from '../../src/main.js';
import { createTestDb, type TestDb } from './db.js';

export interface TestApp {
  url: string;
  deps: AppDeps;
  services: AppDeps['services'];
  t: TestDb;
  /** Every log line the app wrote (tests check that no secret ever appears in one). */
  logs: string[];
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

/**
 * A real app on 127.0.0.1 with its own fresh database. `env` overrides configuration (e.g. OPENAI_BASE_URL of a
 * fake upstream); pass a ManualClock to move time.
 */
export async function startTestApp(options: { env?: Record<string, string>; clock?: Clock | ManualClock; testDb?: TestDb } = {}): Promise<TestApp> {
  const t = options.testDb ?? (await createTestDb());
  const config: Config = parseConfig({ LOG_LEVEL: 'debug', MODELBRIDGE_JOBS: '0', ...options.env });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const deps = wire(config, { db: t.db, clock: options.clock ?? systemClock, logger: createLogger('debug', sink) });
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(tuneServer(s)));
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    url,
    deps,
    services: deps.services,
    t,
    logs,
    app,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (!options.testDb) await t.destroy();
    },
  };
}
