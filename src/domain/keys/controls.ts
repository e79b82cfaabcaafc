import type { Micro } from '../money.js';
import { billingPeriodAt, localDateOf, startOfLocalDate, type Period } from '../billing/period.js';

/**
 * The key controls of docs/limits.md as pure rules: budget periods, model allow-lists, rate-limit windows and tags.
 * Metering's planner applies them under the key's row lock; the doors only validate input with the same constants.
 */

export const LIMIT_RESETS = ['daily', 'weekly', 'monthly'] as const;
export type LimitReset = (typeof LIMIT_RESETS)[number];

/** The row id of a team membership, by which metering locks it (one column, like every other locked row). */
export const memberRowId = (teamId: string, userId: string): string => `${teamId}:${userId}`;

/**
 * The budget period of a key's spending limit that contains `now`, in the installation time zone: a local day, a
 * local week starting Monday, or the local calendar month (the billing period). DST included (startOfLocalDate).
 */
export function limitPeriodAt(reset: LimitReset, now: Date, timeZone: string): Period {
  if (reset === 'monthly') return billingPeriodAt(now, timeZone);
  const { year, month, day } = localDateOf(now, timeZone);
  if (reset === 'daily') return { start: startOfLocalDate(year, month, day, timeZone), end: startOfLocalDate(year, month, day + 1, timeZone) };
  // getUTCDay of the local date itself (not of the instant): 0 = Sunday, so Monday is 1 back from Tuesday, 6 from Sunday.
  const back = (new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7;
  return { start: startOfLocalDate(year, month, day - back, timeZone), end: startOfLocalDate(year, month, day - back + 7, timeZone) };
}

/** Spend counted against a periodic limit now: the stored counter if it belongs to the current period, else 0. */
export function spendInPeriod(stored: { periodStart: Date | null; periodSpendMicro: Micro }, current: Period): Micro {
  return stored.periodStart !== null && stored.periodStart.getTime() >= current.start.getTime() ? stored.periodSpendMicro : 0;
}

// ---- Rate limits ------------------------------------------------------------------------------------------------

/** Rate limits count in fixed one-minute windows aligned to the UTC minute (docs/limits.md says why). */
export const RATE_WINDOW_MS = 60_000;

export const rateWindowStart = (now: Date): Date => new Date(Math.floor(now.getTime() / RATE_WINDOW_MS) * RATE_WINDOW_MS);

export interface RateLimits {
  rpmLimit: number | null;
  tpmLimit: number | null;
  maxParallel: number | null;
}

export const RATE_LIMIT_MAX = 1_000_000_000;

/** A key's own limit wins; where it has none, its team's default applies (personal keys have no default). */
export function effectiveRateLimits(key: RateLimits, teamDefaults: RateLimits | null): RateLimits {
  return {
    rpmLimit: key.rpmLimit ?? teamDefaults?.rpmLimit ?? null,
    tpmLimit: key.tpmLimit ?? teamDefaults?.tpmLimit ?? null,
    maxParallel: key.maxParallel ?? teamDefaults?.maxParallel ?? null,
  };
}

/** The counters of the current window as of `now` (a counter of an ended window counts as 0). */
export function windowCounters(stored: { rateWindowStart: Date | null; rateWindowRequests: number; rateWindowTokens: number }, now: Date): { start: Date; requests: number; tokens: number } {
  const start = rateWindowStart(now);
  if (stored.rateWindowStart === null || stored.rateWindowStart.getTime() !== start.getTime()) return { start, requests: 0, tokens: 0 };
  return { start, requests: stored.rateWindowRequests, tokens: stored.rateWindowTokens };
}

/** What x-ratelimit-* headers say after an admission (or a refusal): limits, what is left, when the window ends. */
export interface RateStatus {
  limits: RateLimits;
  remainingRequests: number | null;
  remainingTokens: number | null;
  resetAt: Date;
  /** Seconds from the admission to resetAt (by the metering clock, not the sender's). */
  resetSeconds: number;
}

// ---- Model allow-lists --------------------------------------------------------------------------------------------

export const ALLOWED_MODELS_MAX = 200;

/** The models a key may call: in its own list and in its team's (a key cannot widen its team's list); null = all. */
export function allowedModelsOf(keyList: string[] | null, teamList: string[] | null): string[] | null {
  if (keyList === null) return teamList;
  if (teamList === null) return keyList;
  const team = new Set(teamList);
  return keyList.filter((m) => team.has(m));
}

export const isModelAllowed = (model: string, allowed: string[] | null): boolean => allowed === null || allowed.includes(model);

/** A stored allow-list (a JSON array of catalog ids) as a list, or null. */
export function parseModelList(stored: unknown): string[] | null {
  if (stored === null || stored === undefined || stored === '') return null;
  const list = JSON.parse(String(stored)) as unknown;
  return Array.isArray(list) ? list.filter((m): m is string => typeof m === 'string') : null;
}

export const storeModelList = (list: string[] | null): string | null => (list === null ? null : JSON.stringify([...new Set(list)].sort()));

// ---- Tags ---------------------------------------------------------------------------------------------------------

export const TAGS_MAX = 10;
export const TAG_MAX_LENGTH = 32;
/** Short, printable, no commas (the portal takes them comma-separated) and no surrounding space. */
export const TAG_PATTERN = /^[A-Za-z0-9._:/@+-]+$/;
