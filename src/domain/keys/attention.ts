import type { ApiKey } from './key.js';

/** A key at or past this share of its spending limit is shown as "near its limit". */
export const NEAR_LIMIT_RATIO = 0.8;
/** A key expiring within this many days is shown as "expiring soon". */
export const EXPIRY_WARNING_MS = 7 * 24 * 3600_000;

export interface KeyAttention {
  nearLimit: boolean;
  expiringSoon: boolean;
  /** Best practice hints: every key should have a spending limit and an expiry. */
  noLimit: boolean;
  noExpiry: boolean;
  /** Rotated and still in its grace period: it works until this instant, then its successor takes over. */
  retiresAt: Date | null;
  /** Its rotate-by date (the maximum key age) is within 7 days, or past (`overdue`): it still works. */
  rotationDue: boolean;
  rotationOverdue: boolean;
}

/**
 * When a rotated key still in its grace period stops working (null for any other key). Its status was judged
 * against the clock when it was read (effectiveStatus), so a usable rotated key's retireAt is still ahead.
 */
export function retiresAt(key: ApiKey): Date | null {
  const usable = key.status === 'active' || key.status === 'limit_reached';
  return usable && key.rotatedToId && key.retireAt ? key.retireAt : null;
}

/** What deserves the user's attention about a key: only usable keys can be near a limit or about to expire. */
export function keyAttention(key: ApiKey, now: Date): KeyAttention {
  const usable = key.status === 'active' || key.status === 'limit_reached';
  const retiring = retiresAt(key);
  const rotateIn = key.rotateBy && key.rotateBy.getTime() - now.getTime();
  return {
    retiresAt: retiring,
    rotationDue: usable && rotateIn !== null && rotateIn <= EXPIRY_WARNING_MS,
    rotationOverdue: usable && rotateIn !== null && rotateIn <= 0,
    nearLimit: usable && key.spendLimitMicro !== null && key.periodSpendMicro >= key.spendLimitMicro * NEAR_LIMIT_RATIO,
    expiringSoon: usable && key.expiresAt !== null && key.expiresAt.getTime() - now.getTime() <= EXPIRY_WARNING_MS,
    // A retiring key is going away anyway: the best-practice hints are about keys that stay.
    noLimit: usable && !retiring && key.spendLimitMicro === null,
    noExpiry: usable && !retiring && key.expiresAt === null,
  };
}

export function keysNeedingAttention(keys: ApiKey[], now: Date): Array<{ key: ApiKey; attention: KeyAttention }> {
  return keys
    .map((key) => ({ key, attention: keyAttention(key, now) }))
    .filter(({ attention }) => attention.nearLimit || attention.expiringSoon || attention.retiresAt !== null || attention.rotationDue);
}
