import { describe, expect, it } from 'vitest';
import { asDatabaseError, DatabaseUnavailable, isDatabaseUnavailable } from '../../src/db/errors.js';

const error = (fields: Record<string, unknown>, message = 'x') => Object.assign(new Error(message), fields);

describe('which database errors mean "unavailable" (503) and which do not', () => {
  it.each([
    ['a query past its deadline', error({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' })],
    ['a connect or handshake past its deadline', error({ code: 'ETIMEDOUT' })],
    ['a refused connection', error({ code: 'ECONNREFUSED' })],
    ['a reset connection', error({ code: 'ECONNRESET' })],
    ['a lost connection', error({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true })],
    ['a connection already closed (mysql2: fatal, no code)', error({ fatal: true }, "Can't add new command when connection is in closed state")],
    ['the pool acquire deadline', Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' })],
    ['a lock wait past innodb_lock_wait_timeout', error({ errno: 1205, code: 'ER_LOCK_WAIT_TIMEOUT' })],
    ['a busy SQLite file', error({ code: 'SQLITE_BUSY' })],
    ['a Galera node not yet ready (joining, or cut off from the cluster)', error({ errno: 1047, code: 'ER_UNKNOWN_COM_ERROR' }, 'WSREP has not yet prepared node for application use')],
    ['one already classified', new DatabaseUnavailable(new Error('gone'))],
  ])('%s is', (_what, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(asDatabaseError(err)).toBeInstanceOf(DatabaseUnavailable);
  });

  it.each([
    ['a duplicate key', error({ errno: 1062, code: 'ER_DUP_ENTRY' })],
    ['a syntax error', error({ errno: 1064, code: 'ER_PARSE_ERROR' })],
    ['a deadlock (retried by the transaction helpers; a bug if it persists)', error({ errno: 1213, code: 'ER_LOCK_DEADLOCK' })],
    ['a constraint on SQLite', error({ code: 'SQLITE_CONSTRAINT_UNIQUE' })],
    ['an error that only mentions a network word', new Error('connect ECONNREFUSED')],
    ['not an error', 'ECONNREFUSED'],
    ['nothing', null],
  ])('%s is not', (_what, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
    expect(asDatabaseError(err)).toBe(err);
  });

  it('says what failed without the query or its bindings', () => {
    const err = new DatabaseUnavailable(error({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' }, "select * from api_keys where key_hash = 'abc' - Query inactivity timeout"));
    expect(err.message).toBe('The database is unavailable: PROTOCOL_SEQUENCE_TIMEOUT: Query inactivity timeout');
  });
});
