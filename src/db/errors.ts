/**
 * "The database cannot answer right now": the one classification of database failures that are not the request's
 * fault and may pass by themselves — the network or server is gone or silent, the pool cannot hand out a
 * connection in time, a lock or a busy file was not free within its wait. Each door maps it (and only it) to 503
 * with Retry-After: the proxy's refusal table, the tRPC error middleware, the portal's error handler.
 *
 * A statement that hit its deadline may or may not have committed on the server: callers that change money must
 * treat the outcome as unknown (admission is never retried; settlement is idempotent and retried).
 */
export class DatabaseUnavailable extends Error {
  constructor(cause: unknown) {
    super(`The database is unavailable: ${describe(cause)}`, { cause });
    this.name = 'DatabaseUnavailable';
  }
}

/** Node socket errors: the server refused, reset, or could not be reached or resolved. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** mysql2: the connection was lost, a query passed its deadline, or the connection is already closed. */
const MYSQL_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN']);

/**
 * MySQL server errors: lock wait timeout (after the transaction helpers' retries), server shutting down, and a
 * Galera node that is not ready for queries (joining the cluster, or without a primary component).
 */
const MYSQL_ERRNOS = new Set([1205, 1053, 1047]);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseUnavailable) return true;
  const e = err as { name?: unknown; code?: unknown; errno?: unknown; fatal?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  // tarn's acquire deadline, as knex rethrows it ("Timeout acquiring a connection").
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || MYSQL_CODES.has(e.code) || e.code.startsWith('SQLITE_BUSY'))) return true;
  if (typeof e.errno === 'number' && MYSQL_ERRNOS.has(e.errno)) return true;
  // mysql2 marks every error that ends the connection as fatal ("Can't add new command when connection is in closed
  // state" has no code at all).
  return e.fatal === true;
}

/** The error to throw on: a DatabaseUnavailable carrying `err` when it is one, else `err` itself. */
export function asDatabaseError(err: unknown): unknown {
  return isDatabaseUnavailable(err) && !(err instanceof DatabaseUnavailable) ? new DatabaseUnavailable(err) : err;
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  // The code and a short message: never bindings, which knex splices into the messages of failed queries.
  const message = typeof e?.message === 'string' ? e.message.split(' - ').pop()!.slice(0, 200) : String(err);
  return typeof e?.code === 'string' ? `${e.code}: ${message}` : message;
}
