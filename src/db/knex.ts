import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from '../../migrations/index.js';

export type Db = Knex;
export type Tx = Knex.Transaction;
/** Either the pool or an open transaction: services accept both so callers can compose them. */
export type Queryable = Knex | Knex.Transaction;

export interface DbOptions {
  /** mysql://… for MySQL/MariaDB; undefined for the embedded SQLite file. */
  databaseUrl: string | undefined;
  sqlitePath?: string;
  poolMax?: number;
}

export function createDb(options: DbOptions): Db {
  if (options.databaseUrl) return createMysql(options.databaseUrl, options.poolMax ?? 10);
  return createSqlite(options.sqlitePath ?? './data/modelbridge.db');
}

function createMysql(url: string, poolMax: number): Db {
  const u = new URL(url);
  return knexFactory({
    client: 'mysql2',
    connection: {
      host: u.hostname,
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: u.pathname.replace(/^\//, ''),
      // UTC in and out; DATETIME(3) columns hold UTC wall time.
      timezone: 'Z',
      // BIGINT and DECIMAL (SUM results) arrive as strings and are converted exactly by toMicro().
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      charset: 'utf8mb4',
      // Metering sends a whole transaction as one multi-statement query (src/db/locked-transaction.ts). Values
      // always travel as ? bindings, never spliced into SQL, so this opens no injection path.
      multipleStatements: true,
    },
    pool: {
      min: 0,
      max: poolMax,
      // Every connection runs in UTC and with a bounded lock wait, so a stuck transaction fails fast and is retried.
      afterCreate(conn: { query: (sql: string, cb: (err: Error | null) => void) => void }, done: (err: Error | null, c: unknown) => void) {
        conn.query("SET time_zone = '+00:00', innodb_lock_wait_timeout = 10", (err) => done(err, conn));
      },
    },
    migrations: { migrationSource },
  });
}

function createSqlite(file: string): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  return knexFactory({
    client: 'better-sqlite3',
    connection: { filename: file },
    useNullAsDefault: true,
    pool: {
      afterCreate(conn: { pragma: (s: string) => void }, done: (err: Error | null, c: unknown) => void) {
        conn.pragma('journal_mode = WAL');
        conn.pragma('foreign_keys = ON');
        conn.pragma('busy_timeout = 5000');
        done(null, conn);
      },
    },
    migrations: { migrationSource },
  });
}

export function isMysql(db: Queryable): boolean {
  return db.client.config.client === 'mysql2';
}

export async function migrateLatest(db: Db): Promise<void> {
  await db.migrate.latest();
}
