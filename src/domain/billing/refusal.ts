import type { KeyStatus } from '../keys/key.js';
import type { RateStatus } from '../keys/controls.js';
/**
 * Why the proxy refuses a request at authentication or admission. The proxy maps each reason to an HTTP status and
 * an error body in the endpoint's own format; messages never contain the key.
 */
export type RefusalReason =
  | 'invalid_api_key'
  | 'key_revoked'
  | 'key_expired'
  | 'spend_limit_reached'
  | 'spend_limit_pending'
  | 'insufficient_balance'
  | 'key_disabled'
  | 'model_not_allowed'
  | 'rate_limit_exceeded'
  | 'member_budget_reached';

export class MeteringRefusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    readonly details: {
      spentMicro?: number;
      limitMicro?: number | null;
      retryAfterSeconds?: number;
      /** A periodic limit: when it resets. */
      resetsAt?: Date;
      /** A rate limit: what x-ratelimit-* says with the refusal. */
      rate?: RateStatus;
      /** The key refused, for its record of refused requests. */
      keyId?: string;
    } = {},
  ) {
    super(message);
    this.name = 'MeteringRefusal';
  }
}

/** Refuses a key that can no longer be used: revoked (rotation retirement included), expired, paused, or owner disabled. */
export function refuseUnusableKey(status: KeyStatus, ownerDisabled = false, keyId?: string): void {
  const details = keyId ? { keyId } : {};
  if (status === 'revoked') throw new MeteringRefusal('key_revoked', 'This API key has been revoked.', details);
  if (status === 'expired') throw new MeteringRefusal('key_expired', 'This API key has expired.', details);
  if (status === 'disabled')
    throw new MeteringRefusal('key_disabled', 'This API key is paused. Its owner or a team manager can resume it in the ModelBridge portal or with keys.enable.', details);
  if (ownerDisabled) throw new MeteringRefusal('invalid_api_key', 'The account that owns this API key is disabled.', details);
}
