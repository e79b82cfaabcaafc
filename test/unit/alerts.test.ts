import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crossedThresholds, DEFAULT_ALERT_THRESHOLDS, validateAlertThresholds } from '../../src/domain/billing/alerts.js';

const thresholds = fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 0, maxLength: 5 }).map((l) => l.sort((a, b) => a - b));
/** Charges of one period, each applied under the row lock in order (a batch of concurrent ones included). */
const charges = fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 60 });

function run(list: readonly number[], limit: number, costs: number[]): { fired: number[]; spent: number } {
  let spent = 0, firedPct = 0;
  const fired: number[] = [];
  for (const cost of costs) {
    spent += cost;
    const c = crossedThresholds(list, limit, spent, firedPct);
    firedPct = c.firedPct;
    fired.push(...c.crossed);
  }
  return { fired, spent };
}

describe('alert threshold crossings', () => {
  it('fires each threshold at most once per period, and exactly once when the spend passes it', () => {
    fc.assert(fc.property(thresholds, fc.integer({ min: 0, max: 50_000 }), charges.filter((c) => c.length > 0), (list, limit, costs) => {
      const { fired, spent } = run(list, limit, costs);
      expect(new Set(fired).size).toBe(fired.length);
      expect(fired.sort((a, b) => a - b)).toEqual(list.filter((t) => spent * 100 >= t * limit));
    }), { numRuns: 2_000 });
  });

  it('fires in order of the thresholds, each at the first charge that reaches it', () => {
    fc.assert(fc.property(thresholds, fc.integer({ min: 1, max: 50_000 }), charges, (list, limit, costs) => {
      let spent = 0, firedPct = 0;
      for (const cost of costs) {
        const before = spent;
        spent += cost;
        const c = crossedThresholds(list, limit, spent, firedPct);
        for (const t of c.crossed) {
          expect(before * 100 < t * limit).toBe(true);
          expect(spent * 100 >= t * limit).toBe(true);
        }
        firedPct = c.firedPct;
      }
    }), { numRuns: 1_000 });
  });

  it('splitting a charge into parts (a batch of concurrent settlements) fires the same thresholds', () => {
    fc.assert(fc.property(thresholds, fc.integer({ min: 1, max: 50_000 }), charges, fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 60 }), (list, limit, costs, cuts) => {
      const parts = costs.flatMap((c, i) => {
        const n = (cuts[i] ?? 0) + 1;
        return Array.from({ length: n }, (_, j) => Math.floor(c / n) + (j < c % n ? 1 : 0));
      });
      expect(run(list, limit, parts).fired).toEqual(run(list, limit, costs).fired);
    }), { numRuns: 1_000 });
  });

  it('does not fire again in a period when the limit is lowered and raised, and fires afresh in a new period', () => {
    const first = crossedThresholds(DEFAULT_ALERT_THRESHOLDS, 1_000, 850, 0);
    expect(first).toEqual({ crossed: [50, 80], firedPct: 80 });
    expect(crossedThresholds(DEFAULT_ALERT_THRESHOLDS, 2_000, 1_700, first.firedPct).crossed).toEqual([]);
    expect(crossedThresholds(DEFAULT_ALERT_THRESHOLDS, 1_000, 1_000, first.firedPct).crossed).toEqual([100]);
    expect(crossedThresholds(DEFAULT_ALERT_THRESHOLDS, 1_000, 500, 0).crossed).toEqual([50]);
    expect(crossedThresholds(DEFAULT_ALERT_THRESHOLDS, null, 10_000, 0).crossed).toEqual([]);
  });

  it('accepts up to five whole percentages from 1 to 100, and refuses the rest', () => {
    expect(validateAlertThresholds([80, 50, 80])).toEqual([50, 80]);
    expect(validateAlertThresholds(null)).toBeNull();
    expect(validateAlertThresholds([])).toEqual([]);
    for (const bad of [[0], [101], [50.5], [10, 20, 30, 40, 50, 60]]) expect(() => validateAlertThresholds(bad)).toThrow(/threshold/);
  });
});
