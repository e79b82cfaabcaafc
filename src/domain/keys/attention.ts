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
}

/** What deserves the user's attention about a key: only usable keys can be near a limit or about to expire. */
export function keyAttention(key: ApiKey, now: Date): KeyAttention {
  const usable = key.status === 'active' || key.status === 'limit_reached';
  return {
    nearLimit: usable && key.spendLimitMicro !== null && key.periodSpendMicro >= key.spendLimitMicro * NEAR_LIMIT_RATIO,
    expiringSoon: usable && key.expiresAt !== null && key.expiresAt.getTime() - now.getTime() <= EXPIRY_WARNING_MS,
    noLimit: usable && key.spendLimitMicro === null,
    noExpiry: usable && key.expiresAt === null,
  };
}

export function keysNeedingAttention(keys: ApiKey[], now: Date): Array<{ key: ApiKey; attention: KeyAttention }> {
  return keys
    .map((key) => ({ key, attention: keyAttention(key, now) }))
    .filter(({ attention }) => attention.nearLimit || attention.expiringSoon);
}
