import type { Config } from './config.js';
import type { SessionManager } from './auth/sessions.js';
import type { Services } from './domain/services.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** Everything a door needs, wired once in main.ts (and by tests, with a test database and clock). */
export interface AppDeps {
  config: Config;
  services: Services;
  sessions: SessionManager;
  logger: Logger;
  metrics: Metrics;
}
