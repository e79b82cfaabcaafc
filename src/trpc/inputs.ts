import { z } from 'zod';
import { parseAud, type Micro } from '../domain/money.js';

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

export const keyStatus = z.enum(['active', 'revoked', 'expired', 'limit_reached']);
export const teamRole = z.enum(['owner', 'admin', 'member', 'viewer']);
export const provider = z.enum(['openai', 'anthropic']);
