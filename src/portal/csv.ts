import { localDateOf } from '../domain/billing/period.js';

/** Quotes when needed, and defuses spreadsheet formulas (a key named "=HYPERLINK(…)" stays text). */
export function csvCell(value: unknown): string {
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s) && typeof value === 'string') s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: readonly unknown[]): string {
  return `${values.map(csvCell).join(',')}\r\n`;
}

/** Today in the viewer's time zone (a file exported on the morning of 3 Dec in Sydney is dated 3 Dec, not 2 Dec UTC). */
export function csvDate(now: Date, timeZone: string): string {
  const d = localDateOf(now, timeZone);
  return `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}
