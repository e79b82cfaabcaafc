/**
 * Billing periods are calendar months in the installation time zone. These helpers find the UTC instants where a
 * local month starts, DST included, using only Intl (no time-zone database of our own).
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Building an Intl.DateTimeFormat costs far more than using one: one per zone, kept. */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function localParts(instant: Date, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const parts = formatterFor(timeZone).formatToParts(instant);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour'), minute: get('minute'), second: get('second') };
}

/** Offset of the zone from UTC at an instant, in ms (Sydney in summer: +11h). */
function zoneOffsetMs(instant: Date, timeZone: string): number {
  const p = localParts(instant, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

/** The UTC instant of local midnight on the first day of (year, month) in the zone. month is 1–12, may overflow. */
function startOfLocalMonth(year: number, month: number, timeZone: string): Date {
  return startOfLocalDate(year, month, 1, timeZone);
}

export interface Period {
  start: Date;
  end: Date;
}

const lastPeriod = new Map<string, Period>();

/** The billing period containing an instant. Metering asks for every batch, so the last answer per zone is kept. */
export function billingPeriodAt(instant: Date, timeZone: string): Period {
  const last = lastPeriod.get(timeZone);
  const t = instant.getTime();
  if (last && last.start.getTime() <= t && t < last.end.getTime()) return { start: new Date(last.start), end: new Date(last.end) };
  const period = computeBillingPeriod(instant, timeZone);
  lastPeriod.set(timeZone, period);
  return { start: new Date(period.start), end: new Date(period.end) };
}

function computeBillingPeriod(instant: Date, timeZone: string): Period {
  const { year, month } = localParts(instant, timeZone);
  let start = startOfLocalMonth(year, month, timeZone);
  // Guard the edge where the instant sits right at a boundary the offset guess put on the other side.
  if (start.getTime() > instant.getTime()) start = startOfLocalMonth(year, month - 1, timeZone);
  const next = localParts(new Date(start.getTime() + 40 * 86_400_000), timeZone);
  const end = startOfLocalMonth(next.year, next.month, timeZone);
  return { start, end };
}

/**
 * The UTC instant of local midnight starting a calendar date in the zone (month 1–12, day 1–31; both may
 * overflow, like Date.UTC). Used for daily charts and for "expires at the end of this date" inputs.
 */
export function startOfLocalDate(year: number, month: number, day: number, timeZone: string): Date {
  const naive = Date.UTC(year, month - 1, day, 0, 0, 0);
  // Two passes settle the offset even when midnight is close to a DST change.
  let guess = naive - zoneOffsetMs(new Date(naive), timeZone);
  guess = naive - zoneOffsetMs(new Date(guess), timeZone);
  return new Date(guess);
}

/** The local calendar date of an instant in the zone. */
export function localDateOf(instant: Date, timeZone: string): { year: number; month: number; day: number } {
  const { year, month, day } = localParts(instant, timeZone);
  return { year, month, day };
}

export interface LocalDay {
  /** YYYY-MM-DD in the time zone. */
  date: string;
  start: Date;
  end: Date;
}

/** The last `count` local days up to and including today, as [start, end) UTC instants, oldest first. */
export function lastLocalDays(now: Date, count: number, timeZone: string): LocalDay[] {
  const today = localDateOf(now, timeZone);
  return Array.from({ length: count }, (_, i) => localDay(today, i - count + 1, timeZone));
}

/** The local days that [from, to) touches, oldest first (from's day included even when it starts mid-day). */
export function localDaysBetween(from: Date, to: Date, timeZone: string): LocalDay[] {
  const first = localDateOf(from, timeZone);
  const days: LocalDay[] = [];
  for (let i = 0; ; i++) {
    const day = localDay(first, i, timeZone);
    if (day.start.getTime() >= to.getTime()) return days;
    days.push(day);
  }
}

function localDay(base: { year: number; month: number; day: number }, offset: number, timeZone: string): LocalDay {
  const start = startOfLocalDate(base.year, base.month, base.day + offset, timeZone);
  const end = startOfLocalDate(base.year, base.month, base.day + offset + 1, timeZone);
  const d = localDateOf(new Date(start.getTime() + 3_600_000 * 12), timeZone);
  return { date: `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`, start, end };
}
