import { describe, expect, it } from 'vitest';
import { billingPeriodAt } from '../../src/domain/billing/period.js';

const TZ = 'Australia/Sydney';

describe('billing periods in the installation time zone', () => {
  it('starts at local midnight on the 1st (Sydney summer time, UTC+11)', () => {
    const p = billingPeriodAt(new Date('2026-11-26T05:00:00Z'), TZ);
    expect(p.start.toISOString()).toBe('2026-10-31T13:00:00.000Z');
    expect(p.end.toISOString()).toBe('2026-11-30T13:00:00.000Z');
  });

  it('puts the instant of local midnight in the new month, and a millisecond before in the old', () => {
    expect(billingPeriodAt(new Date('2026-10-31T13:00:00.000Z'), TZ).start.toISOString()).toBe('2026-10-31T13:00:00.000Z');
    expect(billingPeriodAt(new Date('2026-10-31T12:59:59.999Z'), TZ).start.toISOString()).toBe('2026-09-30T14:00:00.000Z');
  });

  it('handles months that contain a DST change (April: UTC+11 → UTC+10; October: +10 → +11)', () => {
    const april = billingPeriodAt(new Date('2026-04-15T00:00:00Z'), TZ);
    expect(april.start.toISOString()).toBe('2026-03-31T13:00:00.000Z');
    expect(april.end.toISOString()).toBe('2026-04-30T14:00:00.000Z');
    const october = billingPeriodAt(new Date('2026-10-15T00:00:00Z'), TZ);
    expect(october.start.toISOString()).toBe('2026-09-30T14:00:00.000Z');
    expect(october.end.toISOString()).toBe('2026-10-31T13:00:00.000Z');
  });

  it('works in UTC and across a year end', () => {
    const p = billingPeriodAt(new Date('2026-12-31T23:59:59Z'), 'UTC');
    expect(p.start.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(p.end.toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });
});
