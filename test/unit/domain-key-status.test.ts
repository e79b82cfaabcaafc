import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { effectiveStatus, statusForLimit, type KeyStatus } from '../../src/domain/keys/key.js';

const NOW = new Date('2026-11-26T00:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const STATUSES: KeyStatus[] = ['active', 'revoked', 'expired', 'limit_reached'];

describe('key status rules (SPEC §4)', () => {
  it('judges expiry at the instant itself, not a moment later', () => {
    expect(effectiveStatus('active', at(1), null, NOW)).toBe('active');
    expect(effectiveStatus('active', at(0), null, NOW)).toBe('expired');
    expect(effectiveStatus('limit_reached', at(-1), null, NOW)).toBe('expired');
  });

  it('retires a rotated key at the end of its grace period, whatever else is true', () => {
    expect(effectiveStatus('active', null, at(1), NOW)).toBe('active');
    expect(effectiveStatus('active', null, at(0), NOW)).toBe('revoked');
    expect(effectiveStatus('expired', at(-5), at(-1), NOW)).toBe('revoked');
    expect(effectiveStatus('limit_reached', null, at(-1), NOW)).toBe('revoked');
  });

  it('never brings a revoked key back, whatever the dates say', () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: -1e9, max: 1e9 })), fc.option(fc.integer({ min: -1e9, max: 1e9 })), (expiry, retire) => {
        const status = effectiveStatus('revoked', expiry === null ? null : at(expiry), retire === null ? null : at(retire), NOW);
        return status === 'revoked';
      }),
    );
  });

  it('sets limit_reached exactly when spend reaches the limit, and only for usable keys', () => {
    fc.assert(
      fc.property(fc.constantFrom(...STATUSES), fc.nat(), fc.option(fc.nat()), (stored, spend, limit) => {
        const next = statusForLimit(stored, spend, limit);
        if (stored === 'revoked' || stored === 'expired') return next === stored;
        return next === (limit !== null && spend >= limit ? 'limit_reached' : 'active');
      }),
    );
    expect(statusForLimit('active', 5, 5)).toBe('limit_reached');
    expect(statusForLimit('limit_reached', 5, 6)).toBe('active');
    expect(statusForLimit('limit_reached', 5, null)).toBe('active');
  });
});
