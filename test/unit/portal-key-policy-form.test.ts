import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { MAX_POLICY_EXPIRY_DAYS, MAX_POLICY_KEY_AGE_DAYS, NO_KEY_POLICY, type KeyPolicy } from '../../src/domain/keys/key-policy.js';
import { KEY_POLICY_RULES, policyFormValues, policyFormValuesOf, policyFromForm, policyStates } from '../../src/portal/key-policy-form.js';

const anyPolicy = fc.record<KeyPolicy>({
  requireLimit: fc.boolean(),
  maxExpiryDays: fc.option(fc.integer({ min: 1, max: MAX_POLICY_EXPIRY_DAYS }), { nil: null }),
  uniqueNames: fc.boolean(),
  maxKeyAgeDays: fc.option(fc.integer({ min: 1, max: MAX_POLICY_KEY_AGE_DAYS }), { nil: null }),
});

/** What a browser sends for the form as filled in: ticked boxes as "on", unticked ones absent. */
function submitted(policy: KeyPolicy): Record<string, string> {
  const body: Record<string, string> = {};
  for (const [name, value] of Object.entries(policyFormValues(policy))) {
    if (value === true) body[name] = 'on';
    else if (typeof value === 'string') body[name] = value;
  }
  return body;
}

describe('the guard-rails form', () => {
  it('covers every rule of the policy, once', () => {
    expect(KEY_POLICY_RULES.map((r) => r.field).sort()).toEqual(Object.keys(NO_KEY_POLICY).sort());
  });

  it('sends back the policy it was filled with', () => {
    fc.assert(fc.property(anyPolicy, (policy) => {
      expect(policyFromForm(policyFormValuesOf(submitted(policy)))).toEqual(policy);
    }));
  });

  it('switches a rule off when its box is unticked, whatever the days field says', () => {
    expect(policyFromForm(policyFormValuesOf({ maxExpiryDays: '30' }))).toEqual(NO_KEY_POLICY);
    expect(policyFromForm(policyFormValuesOf({ maxExpiryDays: 'soon' }))).toEqual(NO_KEY_POLICY);
  });

  it('refuses a ticked days rule without a whole number, at its field', () => {
    for (const days of ['', 'soon', '1.5', '-3', '12345678']) {
      const error = (() => { try { policyFromForm(policyFormValuesOf({ maxExpiryDaysOn: 'on', maxExpiryDays: days })); } catch (e) { return e; } })();
      expect(error, days).toBeInstanceOf(DomainError);
      expect((error as DomainError).code).toBe('BAD_INPUT');
      expect((error as DomainError).fields?.maxExpiryDays, days).toContain('whole number of days');
    }
  });

  it('reads the rules in words for those who cannot change them', () => {
    expect(policyStates({ requireLimit: true, maxExpiryDays: 1, uniqueNames: false, maxKeyAgeDays: 90 }).map((s) => s.state)).toEqual(['On', 'Within 1 day', 'Off', 'After 90 days']);
  });
});
