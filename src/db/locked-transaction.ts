import type { Knex } from 'knex';
import { queryWithDeadline, type MysqlConnection } from './deadlines.js';
import type { Db } from './knex.js';
import { isGaleraConnection, isMariadbConnection, isMysql } from './knex.js';
import { retryOrThrow } from './transaction.js';

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
   * The columns the one-round-trip check compares with the guess (default: every column). Enough when together they
   * change whenever any column does: a row version the database raises on every UPDATE (migrations, "row
   * versions"), and the value or version of each row a subquery reads. Fewer compared columns make the check — the
   * costliest statements of a guessed transaction — cheaper; the other columns of a matching guess are then trusted.
   */
  guard?: string[];
  /**
   * false: read without locking (a row many transactions only look at, like a catalog entry). Put such reads last:
   * the first non-locking read fixes the transaction's snapshot, and the locking reads before it are unaffected.
   */
  lock?: boolean;
}

export interface Plan<T> {
  writes: Stmt[];
  value: T;
}

/**
 * A transaction of the metering path: lock some rows, compute the writes from them (a pure function `plan`),
 * write, commit. Deadlocks and lock-wait timeouts roll back and retry the whole thing.
 *
 * On MySQL it costs ONE network round trip when the caller can guess what the locked rows hold (it usually can:
 * it wrote them last) and two otherwise:
 * - with a guess: the writes are planned from the guess and sent in one query (a compound statement on MariaDB, a
 *   multi-statement query on MySQL: see oneQuery) behind the locks and a check — `START TRANSACTION; <lock the rows, compare them with the guess (every column, or the guard's), fail
 *   unless all matched>; <writes>; COMMIT`. A failing statement stops a multi-statement query, so if anything differed (another
 *   instance, the portal or a job wrote meanwhile) no write ran; the transaction is still open with the rows
 *   locked, and it goes on as:
 * - without: the locking reads (with START TRANSACTION when none is open), then the writes planned from what they
 *   returned, with COMMIT.
 * Either way the writes that commit were planned from exactly the rows locked in that transaction, so a guess can
 * make a transaction faster but never wrong.
 *
 * On a Galera node (see isGaleraConnection) every statement travels alone instead: START TRANSACTION, each locking
 * read, each write, COMMIT. A brute-force abort (another node's write-set that touches a row locked here) that lands
 * while a multi-statement query runs a statement that only sets user variables is swallowed by the server — the
 * transaction is rolled back silently and the rest of the query runs in autocommit, writes planned from rows it no
 * longer holds: a lost update (test/galera/locked-transaction.test.ts provokes it). A statement sent alone always
 * reports the abort as 1213, and the whole transaction is retried. docs/operations.md has what it costs.
 *
 * On MySQL it runs on the Db's metering pool, the only one that allows multi-statement queries; every query has
 * the deadline of src/db/deadlines.ts, and a database that does not answer in time is a DatabaseUnavailable (the
 * transaction may or may not have committed). On SQLite (in-process, one writer) the statements run one by one in a
 * knex transaction. Only `?` placeholders with bindings: never values spliced into SQL.
 */
export async function lockedTransaction<T>(
  db: Db,
  reads: LockedRead[],
  plan: (rows: Row[][]) => Plan<T>,
  guess?: Row[][] | null,
  options: { attempts?: number; batchOnGalera?: boolean } = {},
): Promise<{ value: T; guessed: boolean }> {
  // Many attempts, all within the retry budget: on Galera two instances metering one hot key on different nodes
  // fail certification against each other (measured in docs/benchmarks.md); each retry is a fresh transaction.
  const attempts = options.attempts ?? 12;
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      if (!isMysql(db)) return { value: await sqliteTransaction(db, reads, plan), guessed: false };
      const pool = db.meteringPool;
      if (!pool) throw new Error('lockedTransaction needs the metering pool of a Db made by createDb');
      const connection = (await pool.client.acquireConnection()) as MysqlConnection;
      try {
        // batchOnGalera: only for the test that shows why not.
        if (isGaleraConnection(connection) && !options.batchOnGalera) return { value: await mysqlOneByOne(connection, reads, plan), guessed: false };
        const planned = guess && attempt === 1 ? planFrom(plan, guess) : null;
        if (planned) {
          if (await mysqlGuessed(connection, reads, planned, guess!)) return { value: planned.value, guessed: true };
          return { value: await mysqlReadThenWrite(connection, reads, plan, false), guessed: false };
        }
        return { value: await mysqlReadThenWrite(connection, reads, plan, true), guessed: false };
      } catch (err) {
        // Anything not committed is rolled back; on a dead connection the server has already done it (and on one
        // closed after a deadline this fails at once).
        await queryWithDeadline(connection, 'ROLLBACK', []).catch(() => undefined);
        throw err;
      } finally {
        await pool.client.releaseConnection(connection);
      }
    } catch (err) {
      await retryOrThrow(err, attempt, attempts, started, 10);
    }
  }
}

/** The plan for the guessed rows, or null when the plan objects to them (it will say so again on the real rows). */
function planFrom<T>(plan: (rows: Row[][]) => Plan<T>, guess: Row[][]): Plan<T> | null {
  try {
    return plan(guess);
  } catch {
    return null;
  }
}

/** ER_SUBQUERY_NO_1_ROW: raised on purpose by the check below when the rows differ from the guess. */
const ROWS_DIFFER = 1242;

/**
 * One round trip: true when committed; false when the rows were not as guessed — nothing written, the transaction
 * still open with the rows locked.
 */
async function mysqlGuessed<T>(connection: MysqlConnection, reads: LockedRead[], planned: Plan<T>, guess: Row[][]): Promise<boolean> {
  const stmts: Stmt[] = [
    { sql: 'START TRANSACTION', bindings: [] },
    // Each check fails on its own when its rows differ, and an error stops the rest: the writes run only when every
    // read matched.
    ...reads.map((r, i) => guardOf(r, guess[i] ?? [])),
    ...planned.writes,
    { sql: 'COMMIT', bindings: [] },
  ];
  try {
    await queryWithDeadline(connection, oneQuery(connection, stmts), stmts.flatMap((s) => s.bindings));
    return true;
  } catch (err) {
    if ((err as { errno?: number }).errno === ROWS_DIFFER) return false;
    throw err;
  }
}

/**
 * Locks the rows of one read (unless it is a plain read), counts them and how many equal their guess in every
 * compared column (`read.guard`), and fails unless both are the number of guessed rows (ids are unique, so then
 * the rows are the guess): `SELECT IF(COUNT(*) = n AND SUM(CASE id WHEN ? THEN (col <=> ? AND …) … END) = n, 1,
 * (SELECT 1 UNION ALL SELECT 2)) … FOR UPDATE` — the subquery, evaluated only when they differ, returns two rows
 * where one is expected (ROWS_DIFFER). `<=>` so that NULL matches NULL; strings compare as bytes
 * (`CAST(… AS BINARY)`), so a change of case or of trailing spaces, which the columns' collation would call equal,
 * is a difference.
 */
function guardOf(read: LockedRead, rows: Row[]): Stmt {
  const compared = read.guard ? read.columns.filter(([name]) => read.guard!.includes(name)) : read.columns;
  const bindings: Knex.RawBinding[] = [];
  let match = '0';
  if (rows.length) {
    match = `CASE ${read.id}`;
    for (const row of rows) {
      match += ` WHEN ? THEN (${compared.map(([name, expr]) => (typeof row[name] === 'string' ? `CAST(${expr} AS BINARY) <=> ?` : `${expr} <=> ?`)).join(' AND ')})`;
      bindings.push(row[read.idColumn] as Knex.RawBinding, ...compared.map(([name]) => (row[name] ?? null) as Knex.RawBinding));
    }
    match += ' ELSE 0 END';
  }
  const n = rows.length;
  return {
    sql: `SELECT IF(COUNT(*) = ${n} AND COALESCE(SUM(${match}), 0) = ${n}, 1, (SELECT 1 UNION ALL SELECT 2)) INTO @mb_guard FROM ${read.from} ` +
      `WHERE ${read.id} IN (${placeholders(read.ids.length)})${forUpdate(read)}`,
    bindings: [...bindings, ...read.ids],
  };
}

/** Two round trips: BEGIN (unless the transaction is open) travels with the locking reads, COMMIT with the writes. */
async function mysqlReadThenWrite<T>(connection: MysqlConnection, reads: LockedRead[], plan: (rows: Row[][]) => Plan<T>, begin: boolean): Promise<T> {
  const stmts = [...(begin ? [{ sql: 'START TRANSACTION', bindings: [] }] : []), ...reads.map((r) => lockingSelect(r))];
  const result = (await queryWithDeadline(connection, joinSql(stmts), stmts.flatMap((s) => s.bindings))) as unknown[];
  // One statement alone comes back as its rows, several as a list of results.
  const sets = (stmts.length === 1 ? [result] : result.slice(begin ? 1 : 0)) as Row[][];
  const { writes, value } = plan(sets);
  await queryWithDeadline(connection, oneQuery(connection, [...writes, { sql: 'COMMIT', bindings: [] }]), writes.flatMap((s) => s.bindings));
  return value;
}

/**
 * Statements that return no rows as ONE statement, MariaDB's anonymous compound statement: `BEGIN NOT ATOMIC …;
 * END`. The server then answers once, at the end, instead of once per statement — each answer is a packet written
 * by the server and a wake-up, read and parse of the client's event loop, which on this path cost more than most of
 * the statements themselves (docs/benchmarks.md, "Where the time goes"). It is not atomic (the name says so): an
 * error stops it where it is, exactly like a multi-statement query, and the transaction stays open. MariaDB only
 * (MySQL 8 has no anonymous compound statement: there the same statements go as a multi-statement query).
 */
function compound(stmts: Stmt[]): string {
  return `BEGIN NOT ATOMIC ${stmts.map((s) => s.sql).join(';\n')}; END`;
}

/** Statements that return no rows, in one query: a compound statement on MariaDB, a multi-statement query on MySQL. */
function oneQuery(connection: MysqlConnection, stmts: Stmt[]): string {
  return isMariadbConnection(connection) ? compound(stmts) : joinSql(stmts);
}

/** Galera: every statement alone, so that each reports a brute-force abort (see lockedTransaction). */
async function mysqlOneByOne<T>(connection: MysqlConnection, reads: LockedRead[], plan: (rows: Row[][]) => Plan<T>): Promise<T> {
  const run = (s: Stmt) => queryWithDeadline(connection, s.sql, s.bindings);
  await run({ sql: 'START TRANSACTION', bindings: [] });
  const sets: Row[][] = [];
  for (const read of reads) sets.push((await run(lockingSelect(read))) as Row[]);
  const { writes, value } = plan(sets);
  for (const s of writes) await run(s);
  await run({ sql: 'COMMIT', bindings: [] });
  return value;
}

/** The read as a SELECT; `locking` false for SQLite, which has no row locks (its one writer holds the database). */
export function lockingSelect(read: LockedRead, locking = true): Stmt {
  const columns = read.columns.map(([name, expr]) => (name === expr ? expr : `${expr} AS ${name}`)).join(', ');
  return { sql: `SELECT ${columns} FROM ${read.from} WHERE ${read.id} IN (${placeholders(read.ids.length)}) ORDER BY ${read.id}${locking ? forUpdate(read) : ''}`, bindings: read.ids };
}

function forUpdate(read: LockedRead): string {
  return read.lock === false ? '' : ' FOR UPDATE';
}

async function sqliteTransaction<T>(db: Db, reads: LockedRead[], plan: (rows: Row[][]) => Plan<T>): Promise<T> {
  return db.transaction(async (trx) => {
    const sets: Row[][] = [];
    for (const read of reads) {
      const s = lockingSelect(read, false);
      sets.push(await trx.raw<Row[]>(s.sql, s.bindings));
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
export function updateWhere(table: string, set: Stmt, where: Stmt): Stmt {
  return { sql: `UPDATE ${table} SET ${set.sql} WHERE ${where.sql}`, bindings: [...set.bindings, ...where.bindings] };
}

export function deleteWhere(table: string, where: Stmt): Stmt {
  return { sql: `DELETE FROM ${table} WHERE ${where.sql}`, bindings: where.bindings };
}

export function insertRows(table: string, columns: string[], rows: Knex.RawBinding[][]): Stmt {
  const row = `(${placeholders(columns.length)})`;
  return { sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${rows.map(() => row).join(', ')}`, bindings: rows.flat() };
}

/** `id IN (?, …)`. */
export function idIn(column: string, ids: string[]): Stmt {
  return { sql: `${column} IN (${placeholders(ids.length)})`, bindings: ids };
}
