import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from '../../migrations/index.js';
import {
  ACQUIRE_TIMEOUT_MS, CONNECT_TIMEOUT_MS, LOCK_WAIT_TIMEOUT_SECONDS, QUERY_TIMEOUT_MS, SQLITE_BUSY_TIMEOUT_MS,
  queryWithDeadline, withDeadlines, withoutQueryDeadline, type MysqlConnection,
} from './deadlines.js';

/**
 * The database: a knex pool, and on MySQL a second, small pool that only lockedTransaction uses. Metering sends a
 * whole transaction as one multi-statement query (src/db/locked-transaction.ts); only that pool allows them, so no
 * other code path can send one (a stray `;` in SQL built elsewhere is a syntax error, not a second statement).
 * `destroy()` closes both.
 */
export type Db = Knex & {
  /** The multi-statement pool of lockedTransaction; null on SQLite, which runs statements one by one. */
  readonly meteringPool: Knex | null;
};
export type Tx = Knex.Transaction;
/** Either the pool or an open transaction: services accept both so callers can compose them. */
export type Queryable = Knex | Knex.Transaction;

export interface DbOptions {
  /** mysql://… for MySQL/MariaDB; undefined for the embedded SQLite file. */
  databaseUrl: string | undefined;
  sqlitePath?: string;
  poolMax?: number;
}

/** Connections of the metering pool: one metering batch is in flight per instance (MeteringService), plus slack. */
const METERING_POOL_MAX = 2;

export function createDb(options: DbOptions): Db {
  if (options.databaseUrl) {
    const main = createMysql(options.databaseUrl, { max: options.poolMax ?? 10, multipleStatements: false });
    const metering = createMysql(options.databaseUrl, { max: METERING_POOL_MAX, multipleStatements: true });
    return withMeteringPool(main, metering);
  }
  return withMeteringPool(createSqlite(options.sqlitePath ?? './data/modelbridge.db'), null);
}

function withMeteringPool(main: Knex, metering: Knex | null): Db {
  const destroyMain = main.destroy.bind(main);
  Object.defineProperty(main, 'meteringPool', { value: metering, enumerable: true });
  Object.defineProperty(main, 'destroy', {
    configurable: true,
    value: async (callback?: (err?: unknown) => void) => {
      const closed = Promise.all([destroyMain(), metering?.destroy()]).then(() => undefined);
      if (!callback) return closed;
      closed.then(() => callback(), callback);
    },
  });
  return main as Db;
}

function createMysql(url: string, pool: { max: number; multipleStatements: boolean }): Knex {
  const u = new URL(url);
  const db = knexFactory({
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
      // Only on the metering pool (see Db). Values always travel as ? bindings, never spliced into SQL, so even
      // there this opens no injection path.
      multipleStatements: pool.multipleStatements,
      connectTimeout: CONNECT_TIMEOUT_MS,
    },
    acquireConnectionTimeout: ACQUIRE_TIMEOUT_MS,
    pool: {
      min: 0,
      max: pool.max,
      // Every connection runs in UTC and with a short lock wait, so a stuck transaction fails fast and is retried
      // (src/db/deadlines.ts says why 1 s).
      afterCreate(conn: MysqlConnection, done: (err: Error | null, c: unknown) => void) {
        queryWithDeadline(conn, `SET time_zone = '+00:00', innodb_lock_wait_timeout = ${LOCK_WAIT_TIMEOUT_SECONDS}`, [])
          .then(() => onGalera(conn))
          .then(
            () => done(null, conn),
            (err: Error) => done(err, conn),
          );
      },
    },
    migrations: { migrationSource },
  });
  return withDeadlines(db, QUERY_TIMEOUT_MS);
}

function createSqlite(file: string): Knex {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = knexFactory({
    client: 'better-sqlite3',
    connection: { filename: file },
    useNullAsDefault: true,
    pool: {
      afterCreate(conn: { pragma: (s: string) => void }, done: (err: Error | null, c: unknown) => void) {
        conn.pragma('journal_mode = WAL');
        conn.pragma('foreign_keys = ON');
        // Short: better-sqlite3 waits synchronously, and the whole process waits with it.
        conn.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
        done(null, conn);
      },
    },
    migrations: { migrationSource },
  });
  return withDeadlines(db, null);
}

/**
 * A connection to a node of a Galera cluster (MariaDB with `wsrep_on`): marked so lockedTransaction sends its
 * statements one at a time there, and given `wsrep_sync_wait = 1`, so every read waits until this node has applied
 * everything the cluster committed before it (read-your-writes across nodes: a key revoked through one node is
 * refused on the very next request through another). docs/operations.md has the measurements behind both.
 * On MySQL, which has no wsrep_on, and on a standalone MariaDB nothing changes.
 */
async function onGalera(conn: MysqlConnection): Promise<void> {
  const rows = (await queryWithDeadline(conn, "SHOW VARIABLES WHERE Variable_name IN ('wsrep_on', 'version')", [])) as Array<{ Variable_name?: string; Value?: string }>;
  const value = (name: string) => rows.find((r) => r.Variable_name === name)?.Value;
  if (/mariadb/i.test(value('version') ?? '')) mariadbConnections.add(conn);
  if (value('wsrep_on') !== 'ON') return;
  await queryWithDeadline(conn, 'SET SESSION wsrep_sync_wait = 1', []);
  galeraConnections.add(conn);
}

const galeraConnections = new WeakSet<object>();
const mariadbConnections = new WeakSet<object>();

/** The server is MariaDB, which has anonymous compound statements (`BEGIN NOT ATOMIC … END`); MySQL has not. */
export function isMariadbConnection(conn: object): boolean {
  return mariadbConnections.has(conn);
}

/** The connection is to a Galera node (see onGalera). */
export function isGaleraConnection(conn: object): boolean {
  return galeraConnections.has(conn);
}

export function isMysql(db: Queryable): boolean {
  return db.client.config.client === 'mysql2';
}

/** Migrations run without the query deadline: DDL on a big table may rightly take minutes (see deadlines.ts). */
export async function migrateLatest(db: Db): Promise<void> {
  await withoutQueryDeadline(db, () => db.migrate.latest());
}
