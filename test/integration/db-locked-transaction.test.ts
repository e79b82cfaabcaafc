import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { insertRows, lockedTransaction, updateWhere, type LockedRead, type Plan, type Row } from '../../src/db/locked-transaction.js';
import { createDb } from '../../src/db/knex.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';

// lockedTransaction on a scratch table: a counter row per id (with a nullable date), and a log the writes append to.
const read = (...ids: string[]): LockedRead => ({
  from: 'lt_counters', id: 'id', idColumn: 'id', ids,
  columns: [['id', 'id'], ['n', 'n'], ['note', 'note'], ['seen_at', 'seen_at']],
});

/** Adds one to each counter it reads, logs what it read; the value is what it planned from. */
function increment(rows: Row[][]): Plan<Array<{ id: string; n: number }>> {
  const seen = rows[0]!.map((r) => ({ id: String(r.id), n: Number(r.n) }));
  const writes = seen.map((r) => updateWhere('lt_counters', { sql: 'n = ?', bindings: [r.n + 1] }, { sql: 'id = ?', bindings: [r.id] }));
  writes.push(insertRows('lt_log', ['counter_id', 'read_n', 'at', 'flag'], seen.map((r) => [r.id, r.n, new Date('2026-11-26T01:02:03.456Z'), r.n % 2 === 0])));
  return { writes, value: seen };
}

describe(`lockedTransaction (${dialect})`, () => {
  let t: TestDb;
  const when = new Date('2026-11-26T10:00:00.123Z');

  beforeAll(async () => {
    t = await createTestDb();
    await t.db.schema.createTable('lt_counters', (table) => {
      table.string('id', 10).primary();
      table.bigInteger('n').notNullable();
      table.string('note', 20).nullable();
      table.datetime('seen_at', { precision: 3 }).nullable();
    });
    await t.db.schema.createTable('lt_log', (table) => {
      table.increments('id');
      table.string('counter_id', 10).notNullable();
      table.bigInteger('read_n').notNullable();
      table.datetime('at', { precision: 3 }).notNullable();
      table.boolean('flag').notNullable();
    });
  });
  beforeEach(async () => {
    await t.db('lt_log').delete();
    await t.db('lt_counters').delete();
    await t.db('lt_counters').insert([
      { id: 'a', n: 5, note: null, seen_at: when },
      { id: 'b', n: 8, note: 'x', seen_at: null },
    ]);
  });
  afterAll(async () => t?.destroy());

  const counters = async () => (await t.db('lt_counters').orderBy('id')).map((r: Row) => [r.id, Number(r.n)]);
  const log = async () => (await t.db('lt_log').orderBy('id')).map((r: Row) => [r.counter_id, Number(r.read_n)]);
  const exact = (): Row[][] => [[
    { id: 'a', n: '5', note: null, seen_at: new Date(when) },
    { id: 'b', n: 8, note: 'x', seen_at: null },
  ]];

  it('plans from the locked rows and writes, without a guess', async () => {
    const out = await lockedTransaction(t.db, [read('a', 'b')], increment);
    expect(out).toEqual({ value: [{ id: 'a', n: 5 }, { id: 'b', n: 8 }], guessed: false });
    expect(await counters()).toEqual([['a', 6], ['b', 9]]);
    expect(await log()).toEqual([['a', 5], ['b', 8]]);
  });

  it.runIf(onMysql)('takes one round trip when the guess is exactly the rows', async () => {
    const out = await lockedTransaction(t.db, [read('a', 'b')], increment, exact());
    expect(out).toEqual({ value: [{ id: 'a', n: 5 }, { id: 'b', n: 8 }], guessed: true });
    expect(await counters()).toEqual([['a', 6], ['b', 9]]);
    const logged = await t.db('lt_log').orderBy('id');
    expect(logged.map((r: Row) => [r.counter_id, Number(r.read_n), (r.at as Date).toISOString(), Number(r.flag)])).toEqual([
      ['a', 5, '2026-11-26T01:02:03.456Z', 0],
      ['b', 8, '2026-11-26T01:02:03.456Z', 1],
    ]);
  });

  const wrong: Array<[string, (g: Row[][]) => void]> = [
    ['a number', (g) => (g[0]![0]!.n = 4)],
    ['NULL where there is a value', (g) => (g[0]![1]!.note = null)],
    ['a value where there is NULL', (g) => (g[0]![0]!.note = '')],
    ['a string in another case (equal in the collation)', (g) => (g[0]![1]!.note = 'X')],
    ['a string with a trailing space (equal in the collation)', (g) => (g[0]![1]!.note = 'x ')],
    ['a date one millisecond off', (g) => (g[0]![0]!.seen_at = new Date(when.getTime() + 1))],
    ['a row that is not there', (g) => g[0]!.push({ id: 'c', n: 1, note: null, seen_at: null })],
    ['a row missing', (g) => g[0]!.pop()],
  ];
  for (const [what, spoil] of wrong) {
    it.runIf(onMysql)(`writes nothing from a guess with ${what}, and plans again from the rows as they are`, async () => {
      const guess = exact();
      spoil(guess);
      const out = await lockedTransaction(t.db, [read('a', 'b')], increment, guess);
      expect(out).toEqual({ value: [{ id: 'a', n: 5 }, { id: 'b', n: 8 }], guessed: false });
      expect(await counters()).toEqual([['a', 6], ['b', 9]]);
      expect(await log()).toEqual([['a', 5], ['b', 8]]);
    });
  }

  it.runIf(onMysql)('sees a change another connection committed after the guess was taken', async () => {
    const guess = exact();
    await t.another()('lt_counters').where({ id: 'b' }).update({ n: 100 });
    const out = await lockedTransaction(t.db, [read('a', 'b')], increment, guess);
    expect(out.guessed).toBe(false);
    expect(await counters()).toEqual([['a', 6], ['b', 101]]);
  });

  it.runIf(onMysql)('falls back when the plan refuses the guess, and fails whole when it refuses the rows', async () => {
    const picky = (rows: Row[][]) => {
      if (Number(rows[0]![0]!.n) !== 5) throw new Error('not five');
      return increment(rows);
    };
    const guess = exact();
    guess[0]![0]!.n = 7;
    expect((await lockedTransaction(t.db, [read('a', 'b')], picky, guess)).guessed).toBe(false);
    expect(await counters()).toEqual([['a', 6], ['b', 9]]);
    await expect(lockedTransaction(t.db, [read('a', 'b')], picky, exact())).rejects.toThrow('not five');
    expect(await counters()).toEqual([['a', 6], ['b', 9]]);
    expect(await log()).toHaveLength(2);
  });

  it.runIf(onMysql)('serialises concurrent transactions on the same rows: every increment lands once', async () => {
    const runs = Array.from({ length: 30 }, (_, i) => lockedTransaction(t.db, [read('a', 'b')], increment, i % 2 ? exact() : null));
    const outs = await Promise.all(runs);
    expect(outs.filter((o) => o.guessed).length).toBeLessThanOrEqual(1);
    expect(await counters()).toEqual([['a', 35], ['b', 38]]);
    expect((await log()).filter(([id]) => id === 'a').map(([, n]) => n).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 30 }, (_, i) => 5 + i));
  });

  it.runIf(onMysql)('runs on its own pool: the main pool refuses a multi-statement query, metering still sends one', async () => {
    await expect(t.db.raw("UPDATE lt_counters SET n = 0 WHERE id = ?; UPDATE lt_counters SET n = 0 WHERE id = 'b'", ['a']))
      .rejects.toMatchObject({ code: 'ER_PARSE_ERROR' });
    await expect(t.db.transaction((trx) => trx.raw('SELECT 1; SELECT 2'))).rejects.toMatchObject({ code: 'ER_PARSE_ERROR' });
    expect(await counters()).toEqual([['a', 5], ['b', 8]]);
    expect(t.db.meteringPool).not.toBeNull();
    expect(t.db.meteringPool!.client).not.toBe(t.db.client);
    expect(await lockedTransaction(t.db, [read('a', 'b')], increment, exact())).toMatchObject({ guessed: true });
    expect(await lockedTransaction(t.db, [read('a', 'b')], increment)).toMatchObject({ guessed: false });
    expect(await counters()).toEqual([['a', 7], ['b', 10]]);
  });

  it.runIf(onMysql)('closes the metering pool with the Db', async () => {
    const db = createDb({ databaseUrl: t.url });
    await lockedTransaction(db, [read('a')], increment);
    await db.destroy();
    expect((db.client as { pool?: unknown }).pool).toBeUndefined();
    expect((db.meteringPool!.client as { pool?: unknown }).pool).toBeUndefined();
  });
});
