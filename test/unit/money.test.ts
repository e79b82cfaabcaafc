import { describe, expect, it } from 'vitest';
import { formatAud, microToAud, parseAud, tokenCost, toMicro } from '../../src/domain/money.js';

describe('money', () => {
  it('parses AUD decimal strings without floating point', () => {
    expect(parseAud('12.5')).toBe(12_500_000);
    expect(parseAud('0.000123')).toBe(123);
    expect(parseAud('0.1')).toBe(100_000);
    expect(parseAud('1000000000')).toBe(1_000_000_000_000_000);
    expect(parseAud('-3')).toBe(-3_000_000);
  });

  it('refuses what is not an AUD amount', () => {
    for (const bad of ['', 'abc', '1.0000001', '1e3', '1,5', ' . ', 'NaN', '0x10', '12345678901'])
      expect(parseAud(bad), bad).toBeNull();
  });

  it('formats micro-AUD as API strings and for people', () => {
    expect(microToAud(12_500_000)).toBe('12.5');
    expect(microToAud(123)).toBe('0.000123');
    expect(microToAud(0)).toBe('0');
    expect(microToAud(-1_500_000)).toBe('-1.5');
    expect(formatAud(12_500_000)).toBe('A$12.50');
    expect(formatAud(1_234)).toBe('A$0.001234');
    expect(formatAud(1_234_567_000_000)).toBe('A$1,234,567.00');
  });

  it('converts database values exactly and refuses lossy ones', () => {
    expect(toMicro('900000000000000')).toBe(900_000_000_000_000);
    expect(toMicro(5n)).toBe(5);
    expect(toMicro(null)).toBe(0);
    expect(() => toMicro('9007199254740993')).toThrow(RangeError);
    expect(() => toMicro(1.5)).toThrow(RangeError);
  });

  it('rounds token costs up to the next micro-AUD, exactly', () => {
    expect(tokenCost(1, 1_000_000)).toBe(1);
    expect(tokenCost(1, 1)).toBe(1); // 0.000001 micro rounds up to 1
    expect(tokenCost(1_000_000, 3_875_000)).toBe(3_875_000);
    expect(tokenCost(333, 232_500)).toBe(78); // 77.4225 → 78
    expect(tokenCost(0, 5_000_000)).toBe(0);
    expect(tokenCost(2_000_000_000, 1_000_000_000_000)).toBe(2_000_000_000_000_000);
  });
});
