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
  const m = DATE.exec(raw);
  if (!m) throw badInput('Dates look like 2026-12-31.');
  return startOfLocalDate(Number(m[1]), Number(m[2]), Number(m[3]) + 1, timeZone);
}

/** The start of a local date (for "from" filters); null when empty or malformed (filters are forgiving). */
export function localDateStart(raw: unknown, timeZone: string, dayOffset = 0): Date | null {
  if (typeof raw !== 'string') return null;
  const m = DATE.exec(raw.trim());
  if (!m) return null;
  return startOfLocalDate(Number(m[1]), Number(m[2]), Number(m[3]) + dayOffset, timeZone);
}

/** Only same-site paths are followed after sign-in: never //evil.example or https://… */
export function safeNext(raw: unknown): string {
  return typeof raw === 'string' && /^\/(?![/\\])[^\s]*$/.test(raw) ? raw : '/';
}

export function choice<T extends string>(raw: unknown, allowed: readonly T[]): T | undefined {
  return typeof raw === 'string' && (allowed as readonly string[]).includes(raw) ? (raw as T) : undefined;
}
