import { TRANSACTION_RETRY_BUDGET_MS } from './deadlines.js';
import { asDatabaseError, DatabaseUnavailable } from './errors.js';
import type { Db, Tx } from './knex.js';

/** MySQL errors after which the whole transaction can safely run again: deadlock, lock-wait timeout. */
const RETRYABLE_MYSQL_ERRNOS = new Set([1213, 1205]);

export function isRetryableDbError(err: unknown): boolean {
  const e = err as { errno?: number; code?: string } | null;
  if (!e) return false;
  if (typeof e.errno === 'number' && RETRYABLE_MYSQL_ERRNOS.has(e.errno)) return true;
  // SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT when a second connection wrote first).
  return typeof e.code === 'string' && e.code.startsWith('SQLITE_BUSY');
}

/**
 * After a failed attempt of a transaction: returns (after a jittered back-off, so two colliding transactions don't
 * collide again in lockstep) when it may run again — a deadlock or lock-wait timeout, attempts left, and still within
 * TRANSACTION_RETRY_BUDGET_MS of the first attempt, so a request waiting on locks gets its answer in time — and
 * throws otherwise (a DatabaseUnavailable when the database could not answer, or could not commit within them).
 */
export async function retryOrThrow(err: unknown, attempt: number, attempts: number, started: number, backoffMs: number): Promise<void> {
  if (!isRetryableDbError(err)) throw asDatabaseError(err);
  // Out of attempts or time: the database could not commit it under this contention (on Galera: writes stalled by a
  // node that died, then certification failures as the backlog commits) — a 503 to retry, not a 500.
  if (attempt >= attempts || performance.now() - started > TRANSACTION_RETRY_BUDGET_MS) throw err instanceof DatabaseUnavailable ? err : new DatabaseUnavailable(err);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * backoffMs * attempt));
}

export interface TxOptions {
  /**
   * How many times the whole function may run; retries happen only on deadlock / lock-wait timeout, and only
   * within TRANSACTION_RETRY_BUDGET_MS.
   */
  attempts?: number;
}

/**
 * Runs fn in a transaction and retries the WHOLE transaction on deadlock or lock-wait timeout. The database rolled
 * everything back before the error reached us, so fn must only have side effects inside the transaction (or be
 * idempotent) — that is what makes a retry unable to double-charge.
 */
export async function withTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>, options: TxOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      await retryOrThrow(err, attempt, attempts, started, 10);
    }
  }
}
