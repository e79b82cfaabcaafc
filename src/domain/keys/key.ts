import { toBool, toDate, toDateOrNull, toInt } from '../../db/rows.js';
import { toMicro, toMicroOrNull, type Micro } from '../money.js';
import { parseThresholds } from '../billing/alerts.js';
import { limitPeriodAt, parseModelList, spendInPeriod, type LimitReset } from './controls.js';

/** `disabled`: paused by its owner or a manager (reversible, keys.enable); `revoked` is final. */
export const KEY_STATUSES = ['active', 'limit_reached', 'disabled', 'expired', 'revoked'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

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
  /** null: the limit is lifetime; else it applies to periodSpendMicro, spend in the current budget period. */
  limitReset: LimitReset | null;
  /** The spend the limit is judged on: spend in the current budget period (0 when the stored counter belongs to an ended one), or spendMicro without a period. */
  periodSpendMicro: Micro;
  /** When the current budget period ends (null without a period). */
  nextResetAt: Date | null;
  /** The key's own allow-list (catalog ids), null = every model; the team's list narrows it further. */
  allowedModels: string[] | null;
  rpmLimit: number | null;
  tpmLimit: number | null;
  maxParallel: number | null;
  tags: string[];
  disabledAt: Date | null;
  /** Alert thresholds on the spending limit (percent; null: the defaults 50, 80, 100). */
  alertThresholds: number[] | null;
  /** Scheduled rotation: the rotate-keys job rotates the key at rotateBy and sends the new secret by signed webhook. */
  autoRotate: boolean;
  /**
   * When the key is due for rotation under the maximum key age in force (null: no such rule, or a key that no longer
   * works or was rotated already). Set by KeysService, which reads the policy; keyFromRow alone leaves it null.
   */
  rotateBy: Date | null;
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

/**
 * A key row as the domain sees it at `now`. A periodic key stored `limit_reached` in a period that has ended is
 * `active` again: the period resets at its boundary, whatever has been written since (the next admission writes it).
 */
export function keyFromRow(r: Record<string, unknown>, now: Date, timeZone: string, tags: string[] = []): ApiKey {
  const expiresAt = toDateOrNull(r.expires_at);
  const retireAt = toDateOrNull(r.retire_at);
  const limitReset = (r.limit_reset as LimitReset | null) ?? null;
  const period = limitReset ? limitPeriodAt(limitReset, now, timeZone) : null;
  const spendMicro = toMicro(r.spend_micro);
  const periodSpendMicro = period ? spendInPeriod({ periodStart: toDateOrNull(r.period_start), periodSpendMicro: toMicro(r.period_spend_micro) }, period) : spendMicro;
  const limit = toMicroOrNull(r.spend_limit_micro);
  let stored = r.status as KeyStatus;
  if (period && stored === 'limit_reached' && (limit === null || periodSpendMicro < limit)) stored = 'active';
  return {
    id: r.id as string,
    name: r.name as string,
    last4: r.last4 as string,
    status: effectiveStatus(stored, expiresAt, retireAt, now),
    spendMicro,
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
    limitReset,
    periodSpendMicro,
    nextResetAt: period?.end ?? null,
    allowedModels: parseModelList(r.allowed_models),
    rpmLimit: toIntOrNull(r.rpm_limit),
    tpmLimit: toIntOrNull(r.tpm_limit),
    maxParallel: toIntOrNull(r.max_parallel),
    tags,
    disabledAt: toDateOrNull(r.disabled_at),
    alertThresholds: parseThresholds(r.alert_thresholds),
    autoRotate: toBool(r.auto_rotate),
    rotateBy: null,
  };
}

const toIntOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : toInt(v));

/**
 * Stored status after a limit change: at or above the limit the key is `limit_reached`; raising or removing the
 * limit restores `active`. Revoked and expired keys keep their status (revocation is terminal).
 */
export function statusForLimit(stored: KeyStatus, spend: Micro, limit: Micro | null): KeyStatus {
  // A paused key stays paused; keys.enable judges the limit again.
  if (stored !== 'active' && stored !== 'limit_reached') return stored;
  return limit !== null && spend >= limit ? 'limit_reached' : 'active';
}
