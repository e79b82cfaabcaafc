import type { Knex } from 'knex';
import type { Db } from './knex.js';
import { isMysql } from './knex.js';
import { isRetryableDbError } from './transaction.js';

export interface Stmt {
  sql: string;
  bindings: Knex.RawBinding[];
}
export type Row = Record<string, unknown>;

/**
 * A transaction in two round trips: the reads (with their row locks), then — computed from what they returned —
 * the writes and the commit. On MySQL each phase is ONE multi-statement query, so a batch of settlements costs two
 * network round trips however many statements it has; on SQLite (in-process, one connection) the statements run
 * one by one in a knex transaction. Deadlocks and lock-wait timeouts roll back and retry the whole thing, so `plan`
 * must be a pure function of the rows it is given.
 *
 * Only `?` placeholders with bindings: never values spliced into SQL.
 */
export async function twoPhaseTransaction<T>(
  db: Db,
  reads: Stmt[],
  plan: (rows: Row[][]) => { writes: Stmt[]; value: T },
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return isMysql(db) ? await mysqlTwoPhase(db, reads, plan) : await sqliteTwoPhase(db, reads, plan);
    } catch (err) {
      if (attempt >= attempts || !isRetryableDbError(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }
}

async function mysqlTwoPhase<T>(db: Db, reads: Stmt[], plan: (rows: Row[][]) => { writes: Stmt[]; value: T }): Promise<T> {
  // BEGIN travels with the reads and COMMIT with the writes: two round trips instead of four. The statements go
  // straight to the pooled mysql2 connection (knex's query building has nothing to add to finished SQL).
  const connection = (await db.client.acquireConnection()) as MysqlConnection;
  try {
    const sets = (await query(connection, joinSql([{ sql: 'START TRANSACTION', bindings: [] }, ...reads]), reads.flatMap((s) => s.bindings))) as Row[][];
    const { writes, value } = plan(sets.slice(1));
    await query(connection, joinSql([...writes, { sql: 'COMMIT', bindings: [] }]), writes.flatMap((s) => s.bindings));
    return value;
  } catch (err) {
    // Anything not committed is rolled back; on a dead connection the server has already done it.
    await query(connection, 'ROLLBACK', []).catch(() => undefined);
    throw err;
  } finally {
    await db.client.releaseConnection(connection);
  }
}

interface MysqlConnection {
  query(sql: string, values: unknown[], callback: (err: Error | null, result: unknown) => void): void;
}

function query(connection: MysqlConnection, sql: string, values: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => connection.query(sql, values, (err, result) => (err ? reject(err) : resolve(result))));
}

async function sqliteTwoPhase<T>(db: Db, reads: Stmt[], plan: (rows: Row[][]) => { writes: Stmt[]; value: T }): Promise<T> {
  return db.transaction(async (trx) => {
    const sets: Row[][] = [];
    for (const s of reads) sets.push((await trx.raw<Row[]>(s.sql.replace(/\s+FOR UPDATE$/i, ''), s.bindings)));
    const { writes, value } = plan(sets);
    for (const s of writes) await trx.raw(s.sql, s.bindings);
    return value;
  });
}

function joinSql(stmts: Stmt[]): string {
  return stmts.map((s) => s.sql).join(';\n');
}

/** `?, ?, ?` for n values. */
export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/**
 * `CASE col WHEN ? THEN ? … ELSE col END` for per-row values in one UPDATE (bindings returned alongside).
 */
export function caseOf(idColumn: string, column: string, values: Map<string, unknown>): Stmt {
  const bindings: Knex.RawBinding[] = [];
  let sql = `CASE ${idColumn}`;
  for (const [id, value] of values) {
    sql += ' WHEN ? THEN ?';
    bindings.push(id, value as Knex.RawBinding);
  }
  return { sql: `${sql} ELSE ${column} END`, bindings };
}
