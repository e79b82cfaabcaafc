import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { createDb, migrateLatest, type Db } from '../../src/db/knex.js';
import { randomBase62 } from '../../src/domain/ids.js';

/** Which database this run of the suite targets: test/run.mjs runs everything once per dialect. */
export const dialect: 'sqlite' | 'mysql' = process.env.TEST_DB === 'mysql' ? 'mysql' : 'sqlite';
export const onMysql = dialect === 'mysql';
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/modelbridge_test';
/** Where the MySQL server of the tests listens (what a test/support/tcp-proxy.ts proxy forwards to). */
export const TEST_MYSQL_SERVER = { host: new URL(TEST_DATABASE_URL).hostname, port: Number(new URL(TEST_DATABASE_URL).port || 3306) };

export interface TestDb {
  db: Db;
  /** The URL a second pool or process can use to reach the same database. */
  url: string | undefined;
  sqlitePath: string | undefined;
  /** Another knex pool on the same database (for two-instance tests). */
  another(): Db;
  destroy(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: a temporary SQLite file, or a new MySQL schema named after a
 * random suffix (dropped afterwards), so files run in parallel without sharing state. MySQL: `throughProxyPort`
 * makes the pools (not the admin connection that creates and drops the schema) connect to 127.0.0.1:<port>, a TCP
 * proxy in front of the server (test/support/tcp-proxy.ts).
 */
export async function createTestDb(options: { poolMax?: number; throughProxyPort?: number } = {}): Promise<TestDb> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelbridge-test-'));
    const sqlitePath = path.join(dir, 'test.db');
    const db = createDb({ databaseUrl: undefined, sqlitePath });
    await migrateLatest(db);
    const others: Db[] = [];
    return {
      db,
      url: undefined,
      sqlitePath,
      another: () => {
        const other = createDb({ databaseUrl: undefined, sqlitePath });
        others.push(other);
        return other;
      },
      destroy: async () => {
        await Promise.all([db.destroy(), ...others.map((o) => o.destroy())]);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const base = new URL(TEST_DATABASE_URL);
  const name = `modelbridge_t_${randomBase62(10).toLowerCase()}`;
  const admin = knexFactory({ client: 'mysql2', connection: { host: base.hostname, port: Number(base.port || 3306), user: decodeURIComponent(base.username), password: decodeURIComponent(base.password) } });
  await admin.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  if (options.throughProxyPort !== undefined) {
    url.hostname = '127.0.0.1';
    url.port = String(options.throughProxyPort);
  }
  const db = createDb({ databaseUrl: url.toString(), poolMax: options.poolMax ?? 20 });
  await migrateLatest(db);
  const others: Db[] = [];
  return {
    db,
    url: url.toString(),
    sqlitePath: undefined,
    another: () => {
      const other = createDb({ databaseUrl: url.toString(), poolMax: options.poolMax ?? 20 });
      others.push(other);
      return other;
    },
    destroy: async () => {
      await Promise.all([db.destroy(), ...others.map((o) => o.destroy())]);
      await admin.raw(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.destroy();
    },
  };
}
