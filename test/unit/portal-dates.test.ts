import { describe, expect, it } from 'vitest';
import { isoDateText, localDateStart, optionalEndOfLocalDate } from '../../src/portal/forms.js';

/**
 * Issue #15, point 9: an Australian product reads dates day first. Browsers send <input type="date"> as YYYY-MM-DD;
 * where a browser shows a plain text field instead, people type 25/12/2026, and that must mean 25 December.
 */
describe('portal dates', () => {
  const sydney = 'Australia/Sydney';

  it('reads DD/MM/YYYY day first, the same as YYYY-MM-DD', () => {
    for (const typed of ['25/12/2026', '25.12.2026', ' 25/12/2026 ']) expect(localDateStart(typed, sydney)?.toISOString(), typed).toBe('2026-12-24T13:00:00.000Z');
    expect(localDateStart('2026-12-25', sydney)?.toISOString()).toBe('2026-12-24T13:00:00.000Z');
    expect(localDateStart('5/1/2027', sydney)?.toISOString()).toBe('2027-01-04T13:00:00.000Z');
    expect(optionalEndOfLocalDate({ expires: '30/06/2027' }, 'expires', sydney)?.toISOString()).toBe('2027-06-30T14:00:00.000Z');
  });

  it('refuses month-first and impossible dates rather than guessing', () => {
    for (const typed of ['12/25/2026', '31/02/2027', '00/01/2027', '1/13/2027', '25/12/26', '2026/12/25']) expect(localDateStart(typed, sydney), typed).toBeNull();
    expect(() => optionalEndOfLocalDate({ expires: '12/31/2099' }, 'expires', sydney)).toThrow('Dates look like 31/12/2026 (day first) or 2026-12-31.');
  });

  it('shows a typed date again as YYYY-MM-DD, which a date field can display', () => {
    expect(isoDateText('5/1/2027')).toBe('2027-01-05');
    expect(isoDateText('not a date')).toBe('not a date');
  });
});
