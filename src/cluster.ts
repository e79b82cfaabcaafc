import cluster from 'node:cluster';
import type { Config } from './config.js';
import { createDb, migrateLatest } from './db/knex.js';
import { start } from './main.js';

/**
 * MODELBRIDGE_WORKERS > 1 (MySQL only): the primary migrates once, then forks that many workers sharing the port.
 * Workers are ordinary instances — metering is exact across them for the same reason it is across machines: row
 * locks in MySQL decide. What an instance remembers (the rows it last wrote, key identities, catalog entries) is
 * only ever a guess checked under those locks, and the holds it renews are its own requests in flight. Each runs the
 * scheduled jobs, whose lease picks one per run. They share the primary's demo credential (Config.demoToken). A worker that dies is replaced; SIGTERM/SIGINT stop them all.
 */
export async function serveCluster(config: Config): Promise<void> {
  if (cluster.isWorker) {
    const running = await start(config, { migrate: false });
    process.once('SIGTERM', () => void running.stop().then(() => process.exit(0)));
    process.once('SIGINT', () => undefined); // the primary decides; it sends SIGTERM
    return;
  }
  const db = createDb({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  await migrateLatest(db);
  await db.destroy();
  let stopping = false;
  // One demo credential for all workers (and their replacements): a demo call sent by one worker may be accepted by
  // another, since they share the port.
  const workerEnv = { MODELBRIDGE_DEMO_TOKEN: config.demoToken };
  for (let i = 0; i < config.workers; i++) cluster.fork(workerEnv);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    process.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`);
    cluster.fork(workerEnv);
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    const wait = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(wait);
        process.exit(0);
      }
    }, 50);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
