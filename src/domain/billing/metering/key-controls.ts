import { microToAud, type Micro } from '../../money.js';
import {
  limitPeriodAt, RATE_WINDOW_MS, rateWindowStart, spendInPeriod, windowCounters, type RateStatus,
} from '../../keys/controls.js';
import { MeteringRefusal } from '../refusal.js';
import type { HoldRow, KeyRow, MemberRow, PlanContext, SettlementItem } from './types.js';

/**
 * The planner's rules for the key controls of docs/limits.md (rate windows, budget periods, allow-list refusals,
 * member budgets), on the working rows of a batch. Pure, like planner.ts, which calls them under the same locks.
 */

/**
 * The key's rate window as this admission finds it, or a refusal: at most maxParallel requests in flight, rpmLimit
 * requests admitted and tpmLimit tokens counted per one-minute window. A request's tokens are its estimate at
 * admission (corrected at settlement); one estimate larger than the whole tpm is let in only into an empty window,
 * like a hold into an empty headroom, so such a key is not locked out for good.
 */
export function admitToRateWindow(key: KeyRow, tokens: number, ctx: PlanContext): { start: Date; requests: number; tokens: number } {
  const { rpmLimit, tpmLimit, maxParallel } = key.rateLimits;
  const window = windowCounters(key, ctx.now);
  const refuse = (what: string, retryAfterSeconds: number) =>
    new MeteringRefusal('rate_limit_exceeded', `Rate limit reached for this API key: ${what}. Retry after ${retryAfterSeconds} s.`, {
      retryAfterSeconds, rate: rateStatus(key, ctx),
    });
  const toWindowEnd = Math.max(1, Math.ceil((window.start.getTime() + RATE_WINDOW_MS - ctx.now.getTime()) / 1000));
  if (maxParallel !== null && key.inFlight >= maxParallel) throw refuse(`${maxParallel} requests in parallel (maxParallel)`, 1);
  if (rpmLimit !== null && window.requests >= rpmLimit) throw refuse(`${rpmLimit} requests per minute (rpmLimit)`, toWindowEnd);
  if (tpmLimit !== null && window.tokens > 0 && window.tokens + tokens > tpmLimit)
    throw refuse(`${tpmLimit} tokens per minute (tpmLimit; this request counts ${tokens} until it is settled)`, toWindowEnd);
  return window;
}

/** x-ratelimit-* of a key as its row now is (limits null: no such limit). */
export function rateStatus(key: KeyRow, ctx: PlanContext): RateStatus {
  const window = windowCounters(key, ctx.now);
  const { rpmLimit, tpmLimit } = key.rateLimits;
  return {
    limits: key.rateLimits,
    remainingRequests: rpmLimit === null ? null : Math.max(0, rpmLimit - window.requests),
    remainingTokens: tpmLimit === null ? null : Math.max(0, tpmLimit - window.tokens),
    resetAt: new Date(window.start.getTime() + RATE_WINDOW_MS),
    resetSeconds: Math.max(0, Math.ceil((window.start.getTime() + RATE_WINDOW_MS - ctx.now.getTime()) / 1000)),
  };
}

export function modelNotAllowed(model: string, allowed: string[]): MeteringRefusal {
  const list = allowed.length ? allowed.slice(0, 50).join(', ') + (allowed.length > 50 ? ', …' : '') : 'none';
  return new MeteringRefusal('model_not_allowed', `This API key may not use the model '${model.slice(0, 100)}'. Models it may use: ${list}.`);
}

/** The spend a key's limit is judged on now: spend in the current budget period, or lifetime spend without one. */
export function limitedSpend(key: KeyRow, ctx: PlanContext): Micro {
  if (!key.limitReset) return key.spendMicro;
  return spendInPeriod(key, limitPeriodAt(key.limitReset, ctx.now, ctx.timeZone));
}

/** Whether the key's limit stops it now (a periodic key stored at its limit in an ended period is not stopped). */
export function atLimit(key: KeyRow, ctx: PlanContext): boolean {
  if (key.limitMicro === null) return false;
  if (key.status === 'limit_reached' && !key.limitReset) return true;
  return limitedSpend(key, ctx) >= key.limitMicro;
}

/**
 * Moves a periodic key's counter into the current period when its stored one has ended: the counter starts at 0
 * and a stored `limit_reached` of the old period lifts. No job has to run first; the admission or settlement that
 * first touches the key in the new period writes it.
 */
export function rollKeyPeriod(key: KeyRow, ctx: PlanContext): void {
  if (!key.limitReset) return;
  const period = limitPeriodAt(key.limitReset, ctx.now, ctx.timeZone);
  if (key.periodStart !== null && key.periodStart.getTime() >= period.start.getTime()) return;
  key.periodStart = period.start;
  key.periodSpendMicro = 0;
  key.alertFiredPct = 0;
  if (key.status === 'limit_reached' && (key.limitMicro === null || key.limitMicro > 0)) key.status = 'active';
}

/** A member budget is monthly: the billing period's. */
export function rollMemberPeriod(member: MemberRow, ctx: PlanContext): void {
  if (member.periodStart !== null && member.periodStart.getTime() >= ctx.period.start.getTime()) return;
  member.periodStart = ctx.period.start;
  member.spendMicro = 0;
  member.alertFiredPct = 0;
}

export const memberSpend = (m: MemberRow, ctx: PlanContext): Micro =>
  m.periodStart !== null && m.periodStart.getTime() >= ctx.period.start.getTime() ? m.spendMicro : 0;

export function memberBudgetReached(member: MemberRow, ctx: PlanContext): MeteringRefusal {
  return new MeteringRefusal(
    'member_budget_reached',
    `You have reached your monthly member budget in this team (spent ${microToAud(memberSpend(member, ctx))} of ${microToAud(member.budgetMicro ?? 0)} AUD). ` +
      `It resets on ${ctx.period.end.toISOString()}; a team owner or admin can raise it.`,
    { spentMicro: memberSpend(member, ctx), limitMicro: member.budgetMicro, resetsAt: ctx.period.end, retryAfterSeconds: secondsUntil(ctx.period.end, ctx.now) },
  );
}

export const secondsUntil = (at: Date, now: Date): number => Math.max(1, Math.ceil((at.getTime() - now.getTime()) / 1000));

/**
 * Replaces the estimate a request counted in its key's rate window at admission by the tokens it really used —
 * while that window is still the key's current one (a window that ended keeps what it counted).
 */
export function correctRateTokens(key: KeyRow, hold: HoldRow, st: SettlementItem['settlement'], ctx: PlanContext): void {
  const admittedIn = rateWindowStart(hold.createdAt).getTime();
  if (key.rateWindowStart === null || key.rateWindowStart.getTime() !== admittedIn || rateWindowStart(ctx.now).getTime() !== admittedIn) return;
  const used = st.inputTokens + st.cachedInputTokens + st.cacheWrite5mTokens + st.cacheWrite1hTokens + st.outputTokens;
  key.rateWindowTokens = Math.max(0, key.rateWindowTokens - hold.rateTokens + used);
}
