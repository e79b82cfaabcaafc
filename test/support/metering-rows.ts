import type { KeyRow, MemberRow } from '../../src/domain/billing/metering/types.js';
import { memberRowId } from '../../src/domain/keys/controls.js';

/** A key row for the planner's tests: active, nothing spent, no controls, unless given. */
export function keyRow(k: Pick<KeyRow, 'id' | 'ownerId' | 'teamId'> & Partial<KeyRow>): KeyRow {
  return {
    status: 'active', spendMicro: 0, heldMicro: 0, limitMicro: null, requestCount: 0, expiresAt: null, retireAt: null, ownerDisabled: false,
    limitReset: null, periodSpendMicro: 0, periodStart: null, allowedModels: null, rateLimits: { rpmLimit: null, tpmLimit: null, maxParallel: null },
    inFlight: 0, rateWindowStart: null, rateWindowRequests: 0, rateWindowTokens: 0, alertThresholds: null, alertFiredPct: 0, settings: {},
    ...k,
  };
}

/** A membership row for the planner's tests (budget null: none). */
export function memberRow(teamId: string, userId: string, budgetMicro: number | null): MemberRow {
  return { id: memberRowId(teamId, userId), budgetMicro, spendMicro: 0, heldMicro: 0, periodStart: null, alertThresholds: null, alertFiredPct: 0 };
}
