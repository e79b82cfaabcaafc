import { toDate, toDateOrNull, toInt } from '../../db/rows.js';
import { toMicro, toMicroOrNull, type Micro } from '../money.js';

export type KeyStatus = 'active' | 'revoked' | 'expired' | 'limit_reached';

export interface ApiKey {
  id: string;
  name: string;
  last4: string;
  /** Effective status, judged against the clock at read time (see effectiveStatus). */
  status: KeyStatus;
  spendMicro: Micro;
  heldMicro: Micro;
  spendLimitMicro: Micro | null;
  expiresAt: Date | null;
  teamId: string | null;
  ownerId: string;
  requestCount: number;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  rotatedToId: string | null;
  retireAt: Date | null;
}

/**
 * The status a key has NOW. The stored status lags the clock (the expire job writes `expired` up to a minute
 * late; a rotated key's grace period ends silently), so every read judges expiry and retirement itself:
 * a key is refused at its expiry instant, whatever the job has done.
 */
export function effectiveStatus(stored: KeyStatus, expiresAt: Date | null, retireAt: Date | null, now: Date): KeyStatus {
  if (stored === 'revoked') return 'revoked';
  if (retireAt && retireAt.getTime() <= now.getTime()) return 'revoked';
  if (stored === 'expired') return 'expired';
  if (expiresAt && expiresAt.getTime() <= now.getTime()) return 'expired';
  return stored;
}

export function keyFromRow(r: Record<string, unknown>, now: Date): ApiKey {
  const expiresAt = toDateOrNull(r.expires_at);
  const retireAt = toDateOrNull(r.retire_at);
  return {
    id: r.id as string,
    name: r.name as string,
    last4: r.last4 as string,
    status: effectiveStatus(r.status as KeyStatus, expiresAt, retireAt, now),
    spendMicro: toMicro(r.spend_micro),
    heldMicro: toMicro(r.held_micro),
    spendLimitMicro: toMicroOrNull(r.spend_limit_micro),
    expiresAt,
    teamId: (r.team_id as string | null) ?? null,
    ownerId: r.owner_id as string,
    requestCount: toInt(r.request_count),
    createdAt: toDate(r.created_at),
    lastUsedAt: toDateOrNull(r.last_used_at),
    revokedAt: toDateOrNull(r.revoked_at),
    rotatedToId: (r.rotated_to_id as string | null) ?? null,
    retireAt,
  };
}

/**
 * Stored status after a limit change: at or above the limit the key is `limit_reached`; raising or removing the
 * limit restores `active`. Revoked and expired keys keep their status (revocation is terminal).
 */
export function statusForLimit(stored: KeyStatus, spend: Micro, limit: Micro | null): KeyStatus {
  if (stored !== 'active' && stored !== 'limit_reached') return stored;
  return limit !== null && spend >= limit ? 'limit_reached' : 'active';
}
