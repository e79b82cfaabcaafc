import { BoundedMap } from './bounded-map.js';
import type { LockedRead, Row } from './locked-transaction.js';

/**
 * The last known image of rows this process locked and wrote, by table and id: the guess that lets
 * lockedTransaction lock, check and write in one round trip. Never trusted on its own — the transaction compares
 * every guessed column with the locked row and writes nothing when they differ — so a stale entry costs a round
 * trip, never money. Bounded: the least recently stored entries go first.
 */
export class RowCache {
  private readonly rows: BoundedMap<string, Row>;

  constructor(maxEntries = 50_000) {
    this.rows = new BoundedMap(maxEntries);
  }

  /** The guessed rows of each read, in the reads' id order; null unless every id has an entry. */
  guess(reads: LockedRead[]): Row[][] | null {
    const out: Row[][] = [];
    for (const read of reads) {
      const rows: Row[] = [];
      for (const id of read.ids) {
        const row = this.rows.get(entry(read.from, id));
        if (!row) return null;
        rows.push(row);
      }
      out.push(rows);
    }
    return out;
  }

  set(read: LockedRead, row: Row): void {
    this.rows.set(entry(read.from, String(row[read.idColumn])), row);
  }

  delete(read: LockedRead, id: string): void {
    this.rows.delete(entry(read.from, id));
  }

  /** Forgets every row of these reads (after a failed transaction: what the rows hold is unknown). */
  forget(reads: LockedRead[]): void {
    for (const read of reads) for (const id of read.ids) this.delete(read, id);
  }
}

function entry(from: string, id: string): string {
  return `${from}\u0000${id}`;
}
