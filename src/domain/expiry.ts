import { badInput } from './errors.js';

/**
 * The longest expiry a key or management token may be given. Without a bound, "9999-12-31T23:59:59-14:00" is year
 * 10000 in UTC, which MySQL's DATETIME cannot store (a 500); and a credential meant to live for decades should
 * simply have no expiry. Five years outlasts any rotation policy.
 */
export const MAX_EXPIRY_DAYS = 5 * 366;
const MAX_EXPIRY_MS = MAX_EXPIRY_DAYS * 86_400_000;

/** An optional expiry: a valid date, in the future, at most MAX_EXPIRY_DAYS from now. */
export function validateExpiry(expiresAt: Date | null | undefined, now: Date): Date | null {
  if (expiresAt === null || expiresAt === undefined) return null;
  const at = expiresAt.getTime();
  if (Number.isNaN(at)) throw badInput('The expiry is not a valid date.');
  if (at <= now.getTime()) throw badInput('The expiry must be in the future.');
  if (at > now.getTime() + MAX_EXPIRY_MS)
    throw badInput(`The expiry can be at most ${MAX_EXPIRY_DAYS / 366} years ahead (${new Date(now.getTime() + MAX_EXPIRY_MS).toISOString().slice(0, 10)}); leave it empty for a key that does not expire.`);
  return expiresAt;
}
