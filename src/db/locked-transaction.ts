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
 * A locking read of some rows by id: `SELECT <columns> FROM <from> WHERE <id> IN (ids) ORDER BY <id> FOR UPDATE`.
 * Kept as parts (not finished SQL) so that the same rows can also be checked against a guess (see below).
 */
export interface LockedRead {
  from: string;
  /** The id expression (`id`, `b.user_id`); rows come back ordered by it, which is also the lock order. */
  id: string;
  /** Output column name → SQL expression. The id column must be among them. */
  columns: Array<[name: string, expr: string]>;
  /** Name of the id among `columns`. */
  idColumn: string;
  ids: string[];
  /**
   * false: read without locking (a row many transactions only look at, like a catalog entry). Put such reads last:
   * the first non-locking read fixes the transaction's snapshot, and the locking reads before it are unaffected.
   */
  lock?: boolean;
}

/** A write, in its plain form and in the form that applies only when the guess was right (`@mb_ok = 1`). */
export interface Write extends Stmt {
  guarded: string;
}

export interface Plan<T> {
  writes: Write[];
  value: T;
}

/**
 * A transaction of the metering path: lock some rows, compute the writes from them (a pure function `plan`),
 * write, commit. Deadlocks and lock-wait timeouts roll back and retry the whole thing.
 *
 * On MySQL it costs ONE network round trip when the caller can guess what the locked rows hold (it usually can:
 * it wrote them last) and two otherwise:
 * - with a guess: the writes are planned from the guess and sent in one multi-statement query with the locks and a
 *   check — `START TRANSACTION; <lock the rows and compare every column with the guess>; <writes, each applying
 *   only if all matched>; COMMIT`. If anything differed (another instance, the portal or a job wrote meanwhile),
 *   nothing was written and it falls back to:
 * - without: the locking reads with START TRANSACTION, then the writes planned from what they returned with COMMIT.
 * Either way the writes that commit were planned from exactly the rows locked in that transaction, so a guess can
 * make a transaction faster but never wrong.
 *
 * On SQLite (in-process, one writer) the statements run one by one in a knex transaction.
 * Only `?` placeholders with bindings: never values spliced into SQL.
 */
export async function lockedTransaction<T>(
  db: Db,
  reads: LockedRead[],
  plan: (rows: Row[][]) => Plan<T>,
  guess?: Row[][] | null,
  attempts = 5,
): Promise<{ value: T; guessed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    try {
      if (!isMysql(db)) return { value: await sqliteTransaction(db, reads, plan), guessed: false };
      const connection = (await db.client.acquireConnection()) as MysqlConnection;
      try {
        if (guess && attempt === 1) {
          const guessed = await mysqlGuessed(connection, reads, plan, guess);
          if (guessed) return { value: guessed.value, guessed: true };
        }
        return { value: await mysqlReadThenWrite(connection, reads, plan), guessed: false };
      } catch (err) {
        // Anything not committed is rolled back; on a dead connection the server has already done it.
        await query(connection, 'ROLLBACK', []).catch(() => undefined);
        throw err;
      } finally {
        await db.client.releaseConnection(connection);
      }
    } catch (err) {
      if (attempt >= attempts || !isRetryableDbError(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }
}

/** One round trip; null when the rows were not as guessed (nothing was written) or the plan refused the guess. */
async function mysqlGuessed<T>(connection: MysqlConnection, reads: LockedRead[], plan: (rows: Row[][]) => Plan<T>, guess: Row[][]): Promise<{ value: T } | null> {
  let planned: Plan<T>;
  try {
    planned = plan(guess);
  } catch {
    return null; // whatever the plan objects to, it will say so again on the rows as they are
  }
  const checks = reads.map((r, i) => guardOf(r, guess[i] ?? [], i));
  const ok = reads.map((_, i) => `@mb_c${i} = ${(guess[i] ?? []).length} AND @mb_m${i} = ${(guess[i] ?? []).length}`).join(' AND ');
  const stmts: Stmt[] = [
    { sql: 'START TRANSACTION', bindings: [] },
    ...checks,
    { sql: `SET @mb_ok = (${ok || 'TRUE'})`, bindings: [] },
    ...planned.writes.map((w) => ({ sql: w.guarded, bindings: w.bindings })),
    { sql: 'SELECT @mb_ok AS ok', bindings: [] },
    { sql: 'COMMIT', bindings: [] },
  ];
  const sets = (await query(connection, joinSql(stmts), stmts.flatMap((s) => s.bindings))) as unknown[];
  const verdict = sets[sets.length - 2] as Row[];
  return Number(verdict[0]?.ok) === 1 ? { value: planned.value } : null;
}

/**
 * Locks the rows of one read (unless it is a plain read) and counts them, and how many equal their guess in every column (`<=>`, so NULL
 * matches NULL): `SELECT COUNT(*), SUM(CASE id WHEN ? THEN (col <=> ? AND …) … END) INTO @mb_cI, @mb_mI … FOR UPDATE`.
 * Both counts equal to the number of guessed rows ⇔ the rows are exactly the guess (ids are unique).
 */
function guardOf(read: LockedRead, rows: Row[], index: number): Stmt {
  const bindings: Knex.RawBinding[] = [];
  let match = '0';
  if (rows.length) {
    match = `CASE ${read.id}`;
    for (const row of rows) {
      match += ` WHEN ? THEN (${read.columns.map(([, expr]) => `${expr} <=> ?`).join(' AND ')})`;
      bindings.push(row[read.idColumn] as Knex.RawBinding, ...read.columns.map(([name]) => (row[name] ?? null) as Knex.RawBinding));
    }
    match += ' ELSE 0 END';
  }
  return {
    sql: `SELECT COUNT(*), COALESCE(SUM(${match}), 0) INTO @mb_c${index}, @mb_m${index} FROM ${read.from} WHERE ${read.id} IN (${placeholders(read.ids.length)})${forUpdate(read)}`,
    bindings: [...bindings, ...read.ids],
  };
}

/** Two round trips: BEGIN travels with the locking reads, COMMIT with the writes. */
async function mysqlReadThenWrite<T>(connection: MysqlConnection, reads: LockedRead[], plan: (rows: Row[][]) => Plan<T>): Promise<T> {
  const selects = reads.map(lockingSelect);
  const sets = (await query(connection, joinSql([{ sql: 'START TRANSACTION', bindings: [] }, ...selects]), selects.flatMap((s) => s.bindings))) as Row[][];
  const { writes, value } = plan(sets.slice(1));
  await query(connection, joinSql([...writes, { sql: 'COMMIT', bindings: [] }]), writes.flatMap((s) => s.bindings));
  return value;
}

function lockingSelect(read: LockedRead): Stmt {
  const columns = read.columns.map(([name, expr]) => (name === expr ? expr : `${expr} AS ${name}`)).join(', ');
  return { sql: `SELECT ${columns} FROM ${read.from} WHERE ${read.id} IN (${placeholders(read.ids.length)}) ORDER BY ${read.id}${forUpdate(read)}`, bindings: read.ids };
}

function forUpdate(read: LockedRead): string {
  return read.lock === false ? '' : ' FOR UPDATE';
}

interface MysqlConnection {
  query(sql: string, values: unknown[], callback: (err: Error | null, result: unknown) => void): void;
}

function query(connection: MysqlConnection, sql: string, values: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => connection.query(sql, values, (err, result) => (err ? reject(err) : resolve(result))));
}

async function sqliteTransaction<T>(db: Db, reads: LockedRead[], plan: (rows: Row[][]) => Plan<T>): Promise<T> {
  return db.transaction(async (trx) => {
    const sets: Row[][] = [];
    for (const read of reads) {
      const s = lockingSelect(read);
      sets.push(await trx.raw<Row[]>(s.sql.replace(/\s+FOR UPDATE$/i, ''), s.bindings));
    }
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

/** `UPDATE table SET … WHERE …`; bindings of `set` come before those of `where`. */
export function updateWhere(table: string, set: Stmt, where: Stmt): Write {
  return {
    sql: `UPDATE ${table} SET ${set.sql} WHERE ${where.sql}`,
    guarded: `UPDATE ${table} SET ${set.sql} WHERE (${where.sql}) AND @mb_ok = 1`,
    bindings: [...set.bindings, ...where.bindings],
  };
}

export function deleteWhere(table: string, where: Stmt): Write {
  return { sql: `DELETE FROM ${table} WHERE ${where.sql}`, guarded: `DELETE FROM ${table} WHERE (${where.sql}) AND @mb_ok = 1`, bindings: where.bindings };
}

/** A multi-row INSERT; guarded, the same rows come from a derived table that is empty unless `@mb_ok = 1`. */
export function insertRows(table: string, columns: string[], rows: Knex.RawBinding[][]): Write {
  const row = `(${placeholders(columns.length)})`;
  const first = `SELECT ${columns.map((c) => `? AS ${c}`).join(', ')}`;
  const rest = rows.slice(1).map(() => ` UNION ALL SELECT ${placeholders(columns.length)}`).join('');
  return {
    sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${rows.map(() => row).join(', ')}`,
    guarded: `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM (${first}${rest}) AS mb_rows WHERE @mb_ok = 1`,
    bindings: rows.flat(),
  };
}

/** `id IN (?, …)`. */
export function idIn(column: string, ids: string[]): Stmt {
  return { sql: `${column} IN (${placeholders(ids.length)})`, bindings: ids };
}
