/** Row ↔ domain conversions shared by every repository: dates and booleans differ between MySQL and SQLite. */

/** MySQL returns Date for DATETIME(3); SQLite stores Dates as epoch milliseconds. */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  if (typeof value === 'string') return new Date(/^\d+$/.test(value) ? Number(value) : value.includes('T') || value.endsWith('Z') ? value : `${value.replace(' ', 'T')}Z`);
  throw new TypeError(`not a timestamp: ${String(value)}`);
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

export function toBool(value: unknown): boolean {
  return value === true || value === 1 || value === '1';
}

export function toInt(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value ?? 0);
  if (!Number.isSafeInteger(n)) throw new RangeError(`not an integer: ${String(value)}`);
  return n;
}
