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
  | 'insufficient_balance';

export class MeteringRefusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    readonly details: { spentMicro?: number; limitMicro?: number | null; retryAfterSeconds?: number; keyId?: string } = {},
  ) {
    super(message);
    this.name = 'MeteringRefusal';
  }
}

/** Refuses a key that can no longer be used: revoked (rotation retirement included), expired, or owner disabled. */
export function refuseUnusableKey(status: 'active' | 'revoked' | 'expired' | 'limit_reached', ownerDisabled = false, keyId?: string): void {
  const details = keyId ? { keyId } : {};
  if (status === 'revoked') throw new MeteringRefusal('key_revoked', 'This API key has been revoked.', details);
  if (status === 'expired') throw new MeteringRefusal('key_expired', 'This API key has expired.', details);
  if (ownerDisabled) throw new MeteringRefusal('invalid_api_key', 'The account that owns this API key is disabled.', details);
}
