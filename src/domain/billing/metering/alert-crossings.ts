import { crossedThresholds, thresholdsOf } from '../alerts.js';
import { limitedSpend, memberSpend } from './key-controls.js';
import type { AlertFiring, BalanceRow, HoldRow, KeyRow, MemberRow, PlanContext, TeamRow } from './types.js';

/**
 * The alert crossings of one settlement, on the working rows right after it was charged (planner.ts settleOne): the
 * spend before and after the charge and the highest threshold fired in the period are all on the locked rows, so
 * the common path (nothing crossed) costs nothing, and the settlements of a batch, applied in order, cross each
 * threshold once.
 */

/** A lifetime limit's "period" in the firing records. */
export const LIFETIME_PERIOD_START = new Date(0);

/**
 * The key's thresholds, and its limit itself: reaching 100 % fires `key.limit_reached` whether or not 100 is among
 * the thresholds (so the marker, the highest fired, always counts 100 as fired once the limit is reached).
 */
export function keyCrossings(key: KeyRow, hold: HoldRow, ctx: PlanContext): AlertFiring[] {
  if (key.limitMicro === null) return [];
  const own = thresholdsOf(key.alertThresholds);
  const spent = limitedSpend(key, ctx);
  const { crossed, firedPct } = crossedThresholds([...new Set([...own, 100])].sort((a, b) => a - b), key.limitMicro, spent, key.alertFiredPct);
  key.alertFiredPct = firedPct;
  const periodStart = key.limitReset && key.periodStart ? key.periodStart : LIFETIME_PERIOD_START;
  const firing = (eventType: AlertFiring['eventType'], threshold: number): AlertFiring => ({
    eventType, scopeId: key.id, periodStart, threshold, userId: key.ownerId, teamId: key.teamId, keyId: key.id,
    spentMicro: spent, limitMicro: key.limitMicro!, requestId: hold.requestId, createdAt: ctx.now,
  });
  return crossed.flatMap((t) => [
    ...(own.includes(t) ? [firing('key.limit_threshold', t)] : []),
    ...(t === 100 ? [firing('key.limit_reached', 100)] : []),
  ]);
}

/** A member budget's thresholds (the team's), in the billing month. */
export function memberCrossings(member: MemberRow, hold: HoldRow, ctx: PlanContext): AlertFiring[] {
  if (member.budgetMicro === null) return [];
  const spent = memberSpend(member, ctx);
  const { crossed, firedPct } = crossedThresholds(thresholdsOf(member.alertThresholds), member.budgetMicro, spent, member.alertFiredPct);
  member.alertFiredPct = firedPct;
  return crossed.map((threshold) => ({
    eventType: 'member.budget_threshold', scopeId: member.id, periodStart: member.periodStart ?? ctx.period.start, threshold,
    userId: hold.userId, teamId: hold.teamId, keyId: hold.keyId, spentMicro: spent, limitMicro: member.budgetMicro!, requestId: hold.requestId, createdAt: ctx.now,
  }));
}

/** A personal balance: the share of the plan's included usage used this billing month (none without included usage). */
export function balanceCrossings(b: BalanceRow, hold: HoldRow, ctx: PlanContext): AlertFiring[] {
  if (b.includedMicro <= 0) return [];
  const spent = b.includedUsedMicro;
  const { crossed, firedPct } = crossedThresholds(thresholdsOf(b.alertThresholds), b.includedMicro, spent, b.alertFiredPct);
  b.alertFiredPct = firedPct;
  return crossed.map((threshold) => ({
    eventType: 'balance.threshold', scopeId: b.userId, periodStart: ctx.period.start, threshold, userId: b.userId, teamId: null,
    keyId: hold.keyId, spentMicro: spent, limitMicro: b.includedMicro, requestId: hold.requestId, createdAt: ctx.now,
  }));
}

/** A team balance: the share of its balance at the last top-up spent since (none before a first top-up). */
export function teamBalanceCrossings(team: TeamRow, hold: HoldRow, ctx: PlanContext): AlertFiring[] {
  if (team.alertBaseMicro === null || team.alertBaseMicro <= 0 || team.alertSince === null) return [];
  const spent = team.alertBaseMicro - team.balanceMicro;
  const { crossed, firedPct } = crossedThresholds(thresholdsOf(team.alertThresholds), team.alertBaseMicro, spent, team.alertFiredPct);
  team.alertFiredPct = firedPct;
  return crossed.map((threshold) => ({
    eventType: 'team.balance_threshold', scopeId: team.id, periodStart: team.alertSince!, threshold, userId: hold.userId, teamId: team.id,
    keyId: hold.keyId, spentMicro: spent, limitMicro: team.alertBaseMicro!, requestId: hold.requestId, createdAt: ctx.now,
  }));
}
