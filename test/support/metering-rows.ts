import type { Settlement } from '../../src/domain/billing/metering.service.js';
import type { KeyRow, MemberRow } from '../../src/domain/billing/metering/types.js';
import { memberRowId } from '../../src/domain/keys/controls.js';
import { NO_TOKENS } from '../../src/domain/models/pricing.js';

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

/** A settlement of a served request (10 input, 5 output tokens) at the given cost, for the metering tests. */
export const okSettlement = (costMicro: number): Settlement => ({
  ...NO_TOKENS, inputTokens: 10, outputTokens: 5, costMicro, outcome: 'ok', estimated: false, httpStatus: 200, latencyMs: 12,
});
