import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lockedTransaction, updateWhere, type LockedRead, type Plan, type Row } from '../../src/db/locked-transaction.js';
import { createClusterDb, type ClusterDb } from './cluster.js';

// Two instances on two nodes add one to the same counter, each planning from the row it remembers (the metering
// path's one-round-trip guess). Every committed increment must show: a lost update means a transaction that was
// aborted by the other node's write-set went on in autocommit.
const read: LockedRead = { from: 'g_counters', id: 'id', idColumn: 'id', ids: ['a'], columns: [['id', 'id'], ['n', 'n']] };
const increment = (rows: Row[][]): Plan<number> => {
  const n = Number(rows[0]![0]!.n) + 1;
  return { writes: [updateWhere('g_counters', { sql: 'n = ?', bindings: [n] }, { sql: 'id = ?', bindings: ['a'] })], value: n };
};

async function race(c: ClusterDb, perNode: number, batchOnGalera: boolean): Promise<{ committed: number; n: number }> {
  let committed = 0;
  const worker = async (node: number) => {
    let last: number | null = 0;
    for (let i = 0; i < perNode; i++) {
      try {
        const guess: Row[][] | null = last === null ? null : [[{ id: 'a', n: last }]];
        last = (await lockedTransaction(c.nodes[node]!, [read], increment, guess, { batchOnGalera })).value;
        committed++;
      } catch (err) {
        if ((err as { errno?: number }).errno !== 1213 && !String(err).includes('1213')) throw err;
        last = null;
      }
    }
  };
  await Promise.all([worker(0), worker(1), worker(2)]);
  const n = Number((await c.nodes[0]!('g_counters').where({ id: 'a' }).first()).n);
  return { committed, n };
}

describe('lockedTransaction on Galera', () => {
  let c: ClusterDb;
  beforeAll(async () => {
    c = await createClusterDb();
    await c.nodes[0]!.schema.createTable('g_counters', (t) => {
      t.string('id', 10).primary();
      t.bigInteger('n').notNullable();
    });
  });
  beforeEach(async () => {
    await c.nodes[0]!('g_counters').delete();
    await c.nodes[0]!('g_counters').insert({ id: 'a', n: 0 });
  });
  afterAll(async () => c?.destroy());

  it('loses no increment when three nodes race on one row (one statement at a time)', async () => {
    const { committed, n } = await race(c, 150, false);
    expect(committed).toBeGreaterThan(0);
    expect(n).toBe(committed);
  });

  it('shows why: the one-round-trip multi-statement batch on Galera (measured, not asserted to fail)', async () => {
    const { committed, n } = await race(c, 150, true);
    console.log(`multi-statement batch on Galera: ${committed} committed, counter ${n}, lost ${committed - n}`);
    expect(n).toBeLessThanOrEqual(committed);
  });
});
