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

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** Day first, as Australians write dates: 25/12/2026, 5/1/2027, 25.12.2026. Never month first. */
const AU_DATE = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/;

export const DATE_HINT = 'Dates look like 31/12/2026 (day first) or 2026-12-31.';

/**
 * An optional date from <input type="date">, read as "through the end of that day" in the viewer's time zone:
 * a key set to expire on 30 June works all of 30 June where its owner lives.
 */
export function optionalEndOfLocalDate(body: FormBody, name: string, timeZone: string): Date | null {
  const raw = text(body, name).trim();
  if (raw === '') return null;
  const date = calendarDate(raw);
  if (!date) throw badInput(DATE_HINT);
  return startOfLocalDate(date.year, date.month, date.day + 1, timeZone);
}

/** The start of a local date (for "from" filters); null when empty or malformed (filters are forgiving). */
export function localDateStart(raw: unknown, timeZone: string, dayOffset = 0): Date | null {
  if (typeof raw !== 'string') return null;
  const date = calendarDate(raw.trim());
  if (!date) return null;
  return startOfLocalDate(date.year, date.month, date.day + dayOffset, timeZone);
}

/** A date field's value as YYYY-MM-DD (what <input type="date"> shows again), or as typed when it is no date. */
export function isoDateText(raw: string): string {
  const date = calendarDate(raw.trim());
  return date ? `${date.year}-${String(date.month).padStart(2, '0')}-${String(date.day).padStart(2, '0')}` : raw;
}

/**
 * YYYY-MM-DD (what <input type="date"> sends), or DD/MM/YYYY typed where the browser shows a plain text field,
 * naming a day that exists: 2026-02-30 or 2026-99-99 is refused, not rolled over into another month or year (Date
 * arithmetic would turn 2026-99-99 into 2034), and so is a month-first 12/25/2026.
 */
function calendarDate(raw: string): { year: number; month: number; day: number } | null {
  const iso = ISO_DATE.exec(raw);
  const au = iso ? null : AU_DATE.exec(raw);
  if (!iso && !au) return null;
  const [year, month, day] = iso ? [Number(iso[1]), Number(iso[2]), Number(iso[3])] : [Number(au![3]), Number(au![2]), Number(au![1])];
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
