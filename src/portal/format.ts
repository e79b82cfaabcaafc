import { formatAud } from '../domain/money.js';
import type { KeyStatus } from '../domain/keys/key.js';

/**
 * Formatting for people, bound to the viewer's time zone: every template gets one of these as `it.f`, so money
 * and dates look the same on every page.
 */
export function formatters(timeZone: string, now: Date) {
  const dateFmt = new Intl.DateTimeFormat('en-AU', { timeZone, day: 'numeric', month: 'short', year: 'numeric' });
  const dateTimeFmt = new Intl.DateTimeFormat('en-AU', { timeZone, day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit' });
  const isoDateFmt = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  const number = new Intl.NumberFormat('en-AU');
  return {
    timeZone,
    /** Money for reading: cents from A$0.10 up, four decimals below that, exact below a tenth of a cent. */
    aud: (micro: number | null | undefined) => (micro === null || micro === undefined ? '—' : formatAud(readableMicro(micro))),
    /** Exact money, for per-request costs and anything a user may reconcile against. */
    audExact: (micro: number) => formatAud(micro),
    date: (d: Date | null | undefined) => (d ? dateFmt.format(d) : '—'),
    dateTime: (d: Date | null | undefined) => (d ? dateTimeFmt.format(d) : '—'),
    /** YYYY-MM-DD in the viewer's zone, for <input type="date"> values. */
    isoDate: (d: Date | null | undefined) => (d ? isoDateFmt.format(d) : ''),
    /** The last day a key or token works: it stops at the instant `d`, so that is the day before a midnight. */
    until: (d: Date | null | undefined) => (d ? dateFmt.format(new Date(d.getTime() - 1)) : '—'),
    iso: (d: Date | null | undefined) => (d ? d.toISOString() : ''),
    relative: (d: Date | null | undefined) => (d ? relativeTime(d, now) : 'never'),
    int: (n: number) => number.format(n),
    ms: (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${number.format(n)} ms`),
    percent: (part: number, whole: number) => (whole > 0 ? Math.min(100, Math.round((part / whole) * 100)) : 0),
    status: (s: KeyStatus | string) => STATUS_LABELS[s] ?? s,
  };
}

export type Formatters = ReturnType<typeof formatters>;

const STATUS_LABELS: Record<string, string> = {
  active: 'Active',
  retiring: 'Retiring',
  revoked: 'Revoked',
  expired: 'Expired',
  limit_reached: 'Limit reached',
  disabled: 'Paused',
  ok: 'OK',
  upstream_error: 'Upstream error',
  client_aborted: 'Client aborted',
  cut_at_limit: 'Cut at limit',
  abandoned: 'Abandoned',
};

function readableMicro(micro: number): number {
  const abs = Math.abs(micro);
  if (abs >= 100_000) return Math.round(micro / 10_000) * 10_000;
  if (abs >= 1_000) return Math.round(micro / 100) * 100;
  return micro;
}

function relativeTime(d: Date, now: Date): string {
  const seconds = Math.round((now.getTime() - d.getTime()) / 1000);
  const future = seconds < 0;
  const abs = Math.abs(seconds);
  const [value, unit] =
    abs < 60 ? [abs, 'second'] : abs < 3600 ? [Math.floor(abs / 60), 'minute'] : abs < 86_400 ? [Math.floor(abs / 3600), 'hour'] : [Math.floor(abs / 86_400), 'day'];
  if (abs < 45) return future ? 'in a moment' : 'just now';
  const text = `${value} ${unit}${value === 1 ? '' : 's'}`;
  return future ? `in ${text}` : `${text} ago`;
}
