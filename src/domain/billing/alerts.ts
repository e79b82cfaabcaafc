import { badInput } from '../errors.js';
import type { Micro } from '../money.js';

/**
 * Spend alerts (docs/limits.md, "Alerts"): thresholds as percentages of a limit — a key's spending limit (of its
 * period when it has one), a member's monthly budget, a personal plan's included usage — each firing once per period.
 *
 * The rule is pure, and decided under the row lock of the limit it watches (the metering planner calls it at
 * settlement): the row carries the highest threshold already fired in its period (`firedPct`), so a threshold
 * fires only when the spend reaches it AND it is above what was fired. Charges under one lock are applied one after
 * the other, so no crossing is missed or doubled, and a lowered then raised limit cannot fire a threshold twice in
 * a period. The new period starts with firedPct 0.
 */

export const DEFAULT_ALERT_THRESHOLDS: readonly number[] = [50, 80, 100];
export const ALERT_THRESHOLDS_MAX = 5;

/** A list of thresholds as stored or given: integers 1–100, at most 5, sorted, no duplicates. Bad input → 400. */
export function validateAlertThresholds(list: readonly number[] | null): number[] | null {
  if (list === null) return null;
  if (!Array.isArray(list) || list.length > ALERT_THRESHOLDS_MAX)
    throw badInput(`Alert thresholds are a list of at most ${ALERT_THRESHOLDS_MAX} percentages.`);
  for (const t of list)
    if (!Number.isInteger(t) || t < 1 || t > 100) throw badInput('Each alert threshold is a whole percentage from 1 to 100.');
  return [...new Set(list)].sort((a, b) => a - b);
}

/** The thresholds in effect: the stored list (an empty list: no alerts), or the defaults. */
export function thresholdsOf(stored: number[] | null): readonly number[] {
  return stored ?? DEFAULT_ALERT_THRESHOLDS;
}

/** A stored list (JSON text) as numbers, or null (defaults); anything unreadable counts as the defaults. */
export function parseThresholds(stored: unknown): number[] | null {
  if (stored === null || stored === undefined || stored === '') return null;
  try {
    const list = JSON.parse(String(stored)) as unknown;
    return Array.isArray(list) ? list.filter((t): t is number => Number.isInteger(t) && t >= 1 && t <= 100) : null;
  } catch {
    return null;
  }
}

export const storeThresholds = (list: number[] | null): string | null => (list === null ? null : JSON.stringify(list));

/** The share of a limit spent, in whole percent rounded down (a limit of 0 is used up at once). */
export function percentUsed(spentMicro: Micro, limitMicro: Micro): number {
  if (limitMicro <= 0) return 100;
  return Math.floor((Math.max(0, spentMicro) * 100) / limitMicro);
}

export interface Crossing {
  /** The thresholds newly reached by this charge, ascending. */
  crossed: number[];
  /** The highest threshold fired in the period after this charge (stored back on the row). */
  firedPct: number;
}

/**
 * Which thresholds a spend of `spentMicro` (after the charge) against `limitMicro` reaches that were not fired yet
 * in this period (`firedPct`: the highest fired). A threshold t is reached when spent ≥ t % of the limit.
 */
export function crossedThresholds(thresholds: readonly number[], limitMicro: Micro | null, spentMicro: Micro, firedPct: number): Crossing {
  if (limitMicro === null || thresholds.length === 0) return { crossed: [], firedPct };
  // spent * 100 >= t * limit, exactly in integers (amounts stay far below 2^53 / 100).
  const crossed = thresholds.filter((t) => t > firedPct && Math.max(0, spentMicro) * 100 >= t * limitMicro);
  return { crossed, firedPct: crossed.length ? Math.max(firedPct, ...crossed) : firedPct };
}
