import { badInput } from '../domain/errors.js';
import { parseAud, type Micro } from '../domain/money.js';
import { startOfLocalDate } from '../domain/billing/period.js';
import type { FormBody } from './context.js';

/** A text field (a missing or repeated field reads as ""). Not trimmed: passwords keep their spaces. */
export function text(body: FormBody, name: string): string {
  const value = body[name];
  return typeof value === 'string' ? value : '';
}

/** An optional AUD amount: empty means none; anything else must be a plain decimal like 12.50. */
export function optionalAud(body: FormBody, name: string, label: string): Micro | null {
  const raw = text(body, name).trim().replace(/^A?\$/, '').replace(/,/g, '');
  if (raw === '') return null;
  const micro = parseAud(raw);
  if (micro === null || micro < 0) throw badInput(`${label} must be an amount in AUD, such as 25 or 12.50.`);
  return micro;
}

export function requiredAud(body: FormBody, name: string, label: string): Micro {
  const micro = optionalAud(body, name, label);
  if (micro === null) throw badInput(`Enter ${label.toLowerCase()}.`);
  return micro;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * An optional date from <input type="date">, read as "through the end of that day" in the viewer's time zone:
 * a key set to expire on 30 June works all of 30 June where its owner lives.
 */
export function optionalEndOfLocalDate(body: FormBody, name: string, timeZone: string): Date | null {
  const raw = text(body, name).trim();
  if (raw === '') return null;
  const date = calendarDate(raw);
  if (!date) throw badInput('Dates look like 2026-12-31.');
  return startOfLocalDate(date.year, date.month, date.day + 1, timeZone);
}

/** The start of a local date (for "from" filters); null when empty or malformed (filters are forgiving). */
export function localDateStart(raw: unknown, timeZone: string, dayOffset = 0): Date | null {
  if (typeof raw !== 'string') return null;
  const date = calendarDate(raw.trim());
  if (!date) return null;
  return startOfLocalDate(date.year, date.month, date.day + dayOffset, timeZone);
}

/**
 * YYYY-MM-DD naming a day that exists: 2026-02-30 or 2026-99-99 is refused, not rolled over into another month
 * or year (Date arithmetic would turn 2026-99-99 into 2034).
 */
function calendarDate(raw: string): { year: number; month: number; day: number } | null {
  const m = DATE.exec(raw);
  if (!m) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCFullYear() !== year || probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day) return null;
  return { year, month, day };
}

/** Only same-site paths are followed after sign-in: never //evil.example or https://… */
export function safeNext(raw: unknown): string {
  return typeof raw === 'string' && /^\/(?![/\\])[^\s]*$/.test(raw) ? raw : '/';
}

/**
 * Where to go back to after a form, with a notice added: `back` when it is a safe same-site path, else `fallback`.
 * The separator is chosen from the path actually used, so a refused `back` containing "?" cannot yield "/keys&…".
 */
export function backWithNotice(back: unknown, fallback: string, notice: string): string {
  const safe = safeNext(back);
  const path = safe === '/' ? fallback : safe;
  return `${path}${path.includes('?') ? '&' : '?'}${notice}`;
}

export function choice<T extends string>(raw: unknown, allowed: readonly T[]): T | undefined {
  return typeof raw === 'string' && (allowed as readonly string[]).includes(raw) ? (raw as T) : undefined;
}
