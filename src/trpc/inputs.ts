import { z } from 'zod';
import { MAX_POLICY_EXPIRY_DAYS, MAX_POLICY_KEY_AGE_DAYS } from '../domain/keys/key-policy.js';
import { parseAud, type Micro } from '../domain/money.js';
import { KEY_STATUSES } from '../domain/keys/key.js';
import { LIMIT_RESETS } from '../domain/keys/controls.js';

/**
 * Shared input schemas. They check shape and turn wire formats into domain values (AUD strings → micro-AUD,
 * ISO strings → Date); the rules themselves (name lengths, future expiry, who may do what) stay in the domain.
 */
export const id = z.string().min(1).max(64);

/** Text the domain trims and checks; the cap here only bounds what we accept off the wire. */
export const text = z.string().max(1000);

/** An AUD amount: a decimal string with up to 6 decimals, never negative. */
export const aud = z.string().max(30).transform((value, ctx): Micro => {
  const micro = parseAud(value);
  if (micro === null || micro < 0) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'Expected a non-negative AUD amount such as "12.5" (at most 6 decimals).' });
    return z.NEVER;
  }
  return micro;
});

/** An ISO-8601 timestamp with a zone (2026-12-01T00:00:00Z or +10:00). */
export const isoDate = z
  .string()
  .datetime({ offset: true, message: 'Expected an ISO-8601 timestamp such as 2026-12-31T00:00:00Z.' })
  .transform((value) => new Date(value));

export const keyStatus = z.enum(KEY_STATUSES);
export const limitReset = z.enum(LIMIT_RESETS);
/** A rate limit: a positive whole number; the domain checks the range. */
export const rateLimit = z.number().int();
export const modelList = z.array(z.string().max(200)).max(1000);
export const tags = z.array(z.string().max(100)).max(100);
/** Alert thresholds in percent; validated by the domain (validateAlertThresholds), so a wrong value says why. */
export const alertThresholds = z.array(z.number().int()).max(20);
export const teamRole = z.enum(['owner', 'admin', 'member', 'viewer']);
export const provider = z.enum(['openai', 'anthropic']);

/** The guard-rails on keys (teams.setKeyPolicy, admin.keyPolicy.set): absent stays, maxExpiryDays / maxKeyAgeDays null removes. */
export const keyPolicyInput = {
  requireLimit: z.boolean().optional(),
  maxExpiryDays: z.number().int().min(1).max(MAX_POLICY_EXPIRY_DAYS).nullable().optional(),
  uniqueNames: z.boolean().optional(),
  maxKeyAgeDays: z.number().int().min(1).max(MAX_POLICY_KEY_AGE_DAYS).nullable().optional(),
};
