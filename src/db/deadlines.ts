import type { Knex } from 'knex';
import { asDatabaseError } from './errors.js';

/**
 * Every database call has a deadline, so a silent database (a dead network keeps sockets open: no error, no reset)
 * costs a request at most a few seconds and a 503 — SPEC §5: "database unreachable → 503 within 5 s" — instead of
 * hanging it. The numbers, and why:
 *
 * - connect 2 s (mysql2 `connectTimeout`: TCP connect + handshake). On a working network both take milliseconds.
 * - acquire 2 s (knex `acquireConnectionTimeout`): waiting for a free pooled connection or a new one.
 * - query 2 s (mysql2's per-query `timeout`, set on every query by `withDeadlines`). Request-path statements take
 *   milliseconds; a statement that times out may still commit on the server (see DatabaseUnavailable). Its
 *   connection is closed at once, so the pool drops it and makes a fresh one for the next caller: that is how
 *   service resumes by itself when the database returns.
 * - lock wait 1 s (`innodb_lock_wait_timeout`, the minimum). Below the query deadline on purpose: a wait for a row
 *   lock must end as the server's clean error 1205 (statement rolled back, connection intact, retried by the
 *   transaction helpers) and not as a client deadline (connection dropped, outcome unknown). Money transactions hold
 *   their locks for milliseconds; a lock held for a second means a stuck holder, not contention.
 * - retries of deadlocks and lock waits stop after 2 s in all (TRANSACTION_RETRY_BUDGET_MS), then the caller gets
 *   DatabaseUnavailable.
 * - SQLite busy 1 s (`busy_timeout`; better-sqlite3 waits synchronously, holding up the whole process meanwhile).
 *
 * The worst case of a /v1 request is its metering batch waiting behind one already in flight (one per instance):
 * two deadlines, about 4 s. Migrations run without a query deadline (`withoutQueryDeadline`): DDL on a big table
 * may rightly take minutes, and nothing is served while they run.
 */
export const CONNECT_TIMEOUT_MS = 2_000;
export const ACQUIRE_TIMEOUT_MS = 2_000;
export const QUERY_TIMEOUT_MS = 2_000;
export const LOCK_WAIT_TIMEOUT_SECONDS = 1;
export const TRANSACTION_RETRY_BUDGET_MS = 2_000;
export const SQLITE_BUSY_TIMEOUT_MS = 1_000;

/** The part of a mysql2 connection the deadline code touches. */
export interface MysqlConnection {
  query(options: { sql: string; timeout?: number }, values: unknown[], callback: (err: Error | null, result: unknown) => void): void;
  destroy(): void;
  stream?: { destroy(): void };
}

interface QueryObject {
  sql?: string;
  options?: Record<string, unknown>;
}

/** knex's query runner and pool, which knex's types do not expose. */
interface ClientInternals {
  _query(connection: unknown, obj: QueryObject | string): Promise<unknown>;
  acquireConnection(): Promise<unknown>;
}

const lifted = new WeakSet<object>();

/**
 * Puts the query deadline on every query of this knex instance (`queryTimeoutMs`, mysql2 only; null for SQLite,
 * which has its busy_timeout), closes a connection whose query passed it, and turns failures of an unavailable
 * database (see isDatabaseUnavailable) into DatabaseUnavailable. Wraps the client's one query runner, so knex
 * builders, raw queries, transactions' BEGIN/COMMIT/ROLLBACK and afterCreate-free paths all go through it.
 */
export function withDeadlines<T extends Knex>(db: T, queryTimeoutMs: number | null): T {
  const client = db.client as unknown as ClientInternals;
  const run = client._query.bind(client);
  const acquire = client.acquireConnection.bind(client);
  client._query = async (connection, obj) => {
    const query = typeof obj === 'object' && obj !== null ? obj : { sql: obj };
    const timeout = queryTimeoutMs === null || lifted.has(client) ? undefined : queryTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(connection, timeout === undefined ? query : { ...query, options: { timeout, ...query.options } });
      } catch (err) {
        if (attempt < AUTOCOMMIT_ATTEMPTS && isDeadlock(err) && !inTransaction(connection)) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
          continue;
        }
        dropIfTimedOut(connection as MysqlConnection, err);
        throw asDatabaseError(err);
      }
    }
  };
  client.acquireConnection = () => acquire().catch((err: unknown) => Promise.reject(asDatabaseError(err)));
  return db;
}

/**
 * A statement outside a transaction (autocommit) that fails with 1213 was rolled back whole, so it can simply run
 * again. On Galera that happens to any write: another node's write-set on the same row wins certification (the
 * server retries once by itself, `wsrep_retry_autocommit`, and then reports 1213). Statements inside a transaction
 * are not retried here: the transaction is gone, and withTransaction / lockedTransaction run it again whole.
 */
const AUTOCOMMIT_ATTEMPTS = 5;

function isDeadlock(err: unknown): boolean {
  return (err as { errno?: unknown } | null)?.errno === 1213;
}

/** knex marks the connection of an open transaction (knex/lib/execution/transaction.js). */
function inTransaction(connection: unknown): boolean {
  return Boolean((connection as { __knexTxId?: unknown } | null)?.__knexTxId);
}

/** Runs fn with no query deadline on db (migrations: nothing else runs meanwhile). */
export async function withoutQueryDeadline<T>(db: Knex, fn: () => Promise<T>): Promise<T> {
  lifted.add(db.client);
  try {
    return await fn();
  } finally {
    lifted.delete(db.client);
  }
}

/** One query on a raw mysql2 connection (the metering pool's), with the deadline and the same error handling. */
export function queryWithDeadline(connection: MysqlConnection, sql: string, values: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) =>
    connection.query({ sql, timeout: QUERY_TIMEOUT_MS }, values, (err, result) => {
      if (!err) return resolve(result);
      dropIfTimedOut(connection, err);
      reject(asDatabaseError(err));
    }),
  );
}

/**
 * A query past its deadline leaves its connection mid-conversation (its answer may still arrive): close it, so the
 * pool's validation drops it rather than hand it to the next caller, and free the socket now rather than wait for a
 * silent peer.
 */
function dropIfTimedOut(connection: MysqlConnection, err: unknown): void {
  if ((err as { code?: unknown } | null)?.code !== 'PROTOCOL_SEQUENCE_TIMEOUT') return;
  connection.destroy();
  connection.stream?.destroy();
}
