#!/usr/bin/env node
// `npm test`: the whole suite — unit, integration and the browser tests (vitest.e2e.config.ts) — on SQLite, then on
// MySQL (TEST_DATABASE_URL). Without a reachable MySQL the MySQL half is skipped with a loud warning — except under
// CI=true, where that is a failure. Extra args go to vitest.
import { spawnSync } from 'node:child_process';
import mysql from 'mysql2/promise';

const url = process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/modelbridge_test';
const ci = process.env.CI === 'true' || process.env.CI === '1';
const args = process.argv.slice(2);

async function mysqlReachable() {
  try {
    const u = new URL(url);
    const conn = await mysql.createConnection({
      host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password),
      connectTimeout: 5000,
    });
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${u.pathname.slice(1) || 'modelbridge_test'}\``);
    await conn.end();
    return true;
  } catch (err) {
    return err;
  }
}

function run(dialect) {
  let status = 0;
  for (const [name, config] of [['test suite', 'vitest.config.ts'], ['browser tests', 'vitest.e2e.config.ts']]) {
    console.log(`\n=== ${name} on ${dialect} ===\n`);
    // A filter given to `npm test -- <filter>` may match files of one config only.
    const filtered = args.length > 0 ? ['--passWithNoTests'] : [];
    const result = spawnSync('npx', ['vitest', 'run', '--config', config, ...filtered, ...args], {
      stdio: 'inherit',
      env: { ...process.env, TEST_DB: dialect, TEST_DATABASE_URL: url },
    });
    status ||= result.status ?? 1;
  }
  return status;
}

const only = process.env.TEST_DB;
let failed = false;
if (only !== 'mysql') failed = run('sqlite') !== 0 || failed;
if (only !== 'sqlite') {
  const reachable = await mysqlReachable();
  if (reachable === true) failed = run('mysql') !== 0 || failed;
  else if (ci) {
    console.error(`\n*** MySQL at ${url.replace(/\/\/[^@]*@/, '//***@')} is not reachable (${reachable.message}); CI=true requires it. ***\n`);
    failed = true;
  } else {
    console.warn(`\n${'!'.repeat(78)}\n!!! SKIPPING the MySQL half of the suite: ${reachable.message}\n!!! Set TEST_DATABASE_URL or start MariaDB; CI=true makes this a failure.\n${'!'.repeat(78)}\n`);
  }
}
process.exit(failed ? 1 : 0);
