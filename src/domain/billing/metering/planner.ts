import { effectiveStatus, type KeyStatus } from '../../keys/key.js';
import { CatalogEntryChanged, sameCatalogEntry } from '../../models/models.service.js';
import { NO_TOKENS } from '../../models/pricing.js';
import { microToAud, type Micro } from '../../money.js';
import { personalAvailable, splitPersonalDebit, type PersonalBuckets } from '../debit-order.js';
import { MeteringRefusal, refuseUnusableKey } from '../refusal.js';
import { periodCounters } from '../rollover.js';
import { isModelAllowed, limitPeriodAt, memberRowId } from '../../keys/controls.js';
import {
  admitToRateWindow, atLimit, correctRateTokens, limitedSpend, memberBudgetReached, memberSpend, modelNotAllowed, rateStatus, rollKeyPeriod,
  rollMemberPeriod, secondsUntil,
} from './key-controls.js';
import { balanceCrossings, keyCrossings, memberCrossings, teamBalanceCrossings } from './alert-crossings.js';
import { MeteringRowMissing } from './types.js';
import type {
  AdmissionItem, BalanceRow, BatchPlan, GrowItem, GrowResult, Hold, HoldRow, KeyRow, LedgerEntryRow, MemberRow, MeteringChanges, MeteringIds, MeteringOp, MeteringRows,
  OpResult, PlanContext, SettlementItem, SettleResult, TeamRow, UsageEventRow,
} from './types.js';

/**
 * The rules of metering as a pure function: the locked rows and a batch of operations in, each operation's result
 * and the batch's named changes out. No database, no clock of its own — so the property tests
 * (test/unit/metering-planner.test.ts) run it on thousands of random batches in milliseconds.
 *
 * A batch applies its settlements and releases first (the holds they remove are headroom for the others beside
 * them), then the growth of streams in flight (they were admitted first), then its admissions, each kind in arrival
 * order: exactly what the same operations one at a time in that order would do. A refusal refuses only its own
 * operation.
 */

const PENDING_RETRY_AFTER_SECONDS = 2;
/** "No limit": a headroom no request can use up (amounts stay far below 2^53, see money.ts). */
export const UNBOUNDED_ROOM = Number.MAX_SAFE_INTEGER;

/** The ids an operation batch locks, sorted (lock order: keys → balances → teams → holds; models are only read). */
export function idsOf(ops: MeteringOp[]): MeteringIds {
  const keys: string[] = [], users: string[] = [], teams: string[] = [], members: string[] = [], requests: string[] = [], models: string[] = [];
  // A team key's owner's membership row carries the member budget: locked with the team.
  const payer = (userId: string, teamId: string | null) => (teamId ? (teams.push(teamId), members.push(memberRowId(teamId, userId))) : users.push(userId));
  for (const op of ops) {
    if ('admit' in op) {
      keys.push(op.admit.keyId);
      payer(op.admit.ownerId, op.admit.teamId);
      if (op.admit.catalog) models.push(op.admit.catalog.id);
    } else {
      const hold = 'settle' in op ? op.settle.hold : 'grow' in op ? op.grow.hold : op.release.hold;
      keys.push(hold.keyId);
      payer(hold.userId, hold.teamId);
      requests.push(hold.requestId);
    }
  }
  return { keys: sorted(keys), users: sorted(users), teams: sorted(teams), members: sorted(members), requests: sorted(requests), models: sorted(models) };
}

/** Working copies of the rows a batch changes, with what it did to each. */
interface Working {
  keys: Map<string, KeyRow & { touched: boolean; charged: boolean }>;
  balances: Map<string, BalanceRow & { touched: boolean; charged: boolean }>;
  teams: Map<string, TeamRow & { touched: boolean; charged: boolean }>;
  members: Map<string, MemberRow & { touched: boolean; charged: boolean }>;
  /** Holds still open as the batch goes (a settled one is removed, so a replay in the same batch finds none). */
  holds: Map<string, HoldRow>;
  changes: MeteringChanges;
}

export function planBatch(rows: MeteringRows, ops: MeteringOp[], ctx: PlanContext): BatchPlan {
  const rolloverDue = sorted(ops.flatMap((op) => {
    const charge = 'settle' in op ? op.settle : null;
    if (!charge || charge.hold.teamId || charge.settlement.costMicro <= 0) return [];
    const b = rows.balances.get(charge.hold.userId);
    return b && rows.holds.has(charge.hold.requestId) && periodCounters(b, ctx.period).stale ? [b.userId] : [];
  }));
  const w: Working = {
    keys: copyAll(rows.keys),
    balances: copyAll(rows.balances),
    teams: copyAll(rows.teams),
    members: copyAll(rows.members),
    holds: new Map(rows.holds),
    changes: { keys: [], balances: [], teams: [], members: [], holdsPlaced: [], holdsRemoved: [], holdsResized: [], usageEvents: [], ledger: [], alerts: [] },
  };
  const results: OpResult[] = new Array(ops.length);
  if (rolloverDue.length) return { results, changes: w.changes, rolloverDue };
  ops.forEach((op, i) => {
    if ('settle' in op) results[i] = settleOne(op.settle, w, ctx);
    else if ('release' in op) results[i] = releaseOne(op.release.hold, w, ctx);
  });
  ops.forEach((op, i) => {
    if ('grow' in op) results[i] = growOne(op.grow, w, ctx);
  });
  ops.forEach((op, i) => {
    if ('admit' in op) results[i] = admitOne(op.admit, rows, w, ctx);
  });
  collectChanges(w, ctx);
  return { results, changes: w.changes, rolloverDue };
}

function copyAll<T extends object>(m: Map<string, T>): Map<string, T & { touched: boolean; charged: boolean }> {
  return new Map([...m].map(([id, row]) => [id, { ...row, touched: false, charged: false }]));
}

// ---- Admission ------------------------------------------------------------------------------------------------

function admitOne(item: AdmissionItem, rows: MeteringRows, w: Working, ctx: PlanContext): Hold | Error {
  const key = w.keys.get(item.keyId);
  try {
    if (!key || key.ownerId !== item.ownerId || key.teamId !== item.teamId) throw new MeteringRefusal('invalid_api_key', 'Incorrect API key provided.');
    if (item.catalog) {
      const entry = rows.models.get(item.catalog.id);
      if (!entry || !sameCatalogEntry(entry, item.catalog)) throw new CatalogEntryChanged(item.catalog.id);
    }
    refuseUnusableKey(effectiveStatus(key.status, key.expiresAt, key.retireAt, ctx.now), key.ownerDisabled);
    // Before any hold: a model outside the list costs nothing and counts in no rate window.
    if (!isModelAllowed(item.model, key.allowedModels)) throw modelNotAllowed(item.model, key.allowedModels!);
    const tokens = Math.max(0, Math.round(item.estimatedTokens ?? 0));
    const window = admitToRateWindow(key, tokens, ctx);
    const payer = key.teamId ? w.teams.get(key.teamId) : w.balances.get(key.ownerId);
    const member = key.teamId ? w.members.get(memberRowId(key.teamId, key.ownerId)) : undefined;
    const { keyHoldMicro, payerHoldMicro, memberHoldMicro } = reserveHolds(item, key, payer, member, ctx);
    rollKeyPeriod(key, ctx);
    key.heldMicro += keyHoldMicro;
    key.inFlight += 1;
    key.rateWindowStart = window.start;
    key.rateWindowRequests = window.requests + 1;
    key.rateWindowTokens = window.tokens + tokens;
    key.touched = true;
    payer!.heldMicro += payerHoldMicro;
    payer!.touched = true;
    if (member && memberHoldMicro > 0) {
      rollMemberPeriod(member, ctx);
      member.heldMicro += memberHoldMicro;
      member.touched = true;
    }
    const hold: Hold = {
      requestId: item.requestId, keyId: key.id, userId: key.ownerId, teamId: key.teamId, keyHoldMicro, payerHoldMicro, memberHoldMicro,
      rateTokens: tokens, model: item.model, provider: item.provider, endpoint: item.endpoint, streamed: item.streamed, createdAt: ctx.now,
    };
    w.changes.holdsPlaced.push({ ...hold, deadlineAt: new Date(ctx.now.getTime() + ctx.holdTtlMs) });
    return { ...hold, rate: rateStatus(key, ctx) };
  } catch (err) {
    return err as Error;
  }
}

/**
 * The holds of one admission, against the key's limit, the payer's balance and the member's budget, each of which
 * already carries the holds of requests in flight. Each side on its own: an estimate that fits the free headroom is
 * held whole; one that does not is admitted only when nothing else is held on that side, holding the rest of the
 * headroom (so at most one request at a time can cross it). The sides are independent: a key capped at a tiny
 * remaining limit still reserves the full estimate at its payer, or the payer could be overrun by many requests.
 */
function reserveHolds(
  item: AdmissionItem, key: KeyRow, payer: BalanceRow | TeamRow | undefined, member: MemberRow | undefined, ctx: PlanContext,
): { keyHoldMicro: Micro; payerHoldMicro: Micro; memberHoldMicro: Micro } {
  const spent = limitedSpend(key, ctx);
  const keyRoom = key.limitMicro === null ? UNBOUNDED_ROOM : key.limitMicro - spent;
  if (atLimit(key, ctx) || keyRoom <= 0) throw limitReached(key, spent, ctx);
  const keyHoldMicro = reserve(item, keyRoom, key.heldMicro);
  if (keyHoldMicro === null)
    throw new MeteringRefusal('spend_limit_pending', pending('this key’s spending limit', item, keyRoom - key.heldMicro, 'a higher limit'), {
      spentMicro: spent, limitMicro: key.limitMicro, retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
    });
  let memberHoldMicro = 0;
  if (member && member.budgetMicro !== null) {
    const memberRoom = member.budgetMicro - memberSpend(member, ctx);
    if (memberRoom <= 0) throw memberBudgetReached(member, ctx);
    const held = reserve(item, memberRoom, member.heldMicro);
    if (held === null)
      throw new MeteringRefusal('spend_limit_pending', pending('your member budget in this team', item, memberRoom - member.heldMicro, 'a higher budget'), {
        retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
      });
    memberHoldMicro = held;
  }
  if (!payer) throw new MeteringRowMissing(`payer of key ${key.id}`);
  const available = 'userId' in payer ? personalAvailable(bucketsOf(payer, ctx)) : payer.balanceMicro;
  if (available <= 0)
    throw new MeteringRefusal('insufficient_balance', 'userId' in payer
      ? 'Your plan’s included usage and prepaid balance are used up. Ask an installation admin for a top-up or a plan with overage.'
      : 'The team balance is used up. Ask an installation admin to top it up.');
  const payerHoldMicro = reserve(item, available, payer.heldMicro);
  if (payerHoldMicro === null)
    throw new MeteringRefusal('spend_limit_pending', pending('the balance', item, available - payer.heldMicro, 'a top-up'), {
      retryAfterSeconds: PENDING_RETRY_AFTER_SECONDS,
    });
  return { keyHoldMicro, payerHoldMicro, memberHoldMicro };
}

/**
 * The refusal of a request whose hold does not fit beside the holds in flight: it says what would let it in. A
 * non-streaming request holds its whole output bound (it cannot be cut), so a lower max_tokens, or streaming (held
 * as it goes), may fit where it does not.
 */
function pending(what: string, item: AdmissionItem, free: Micro, more: string): string {
  const base = `Requests in flight have reserved the rest of ${what}; retry shortly`;
  if (item.streamed || item.unbounded) return `${base}.`;
  return `${base}. This request may cost up to ${microToAud(item.estimateMicro)} AUD (its input and max_tokens at catalog prices) ` +
    `and ${microToAud(Math.max(0, free))} AUD is free: a lower max_tokens, streaming (which holds as it goes) or ${more} lets it in.`;
}

/**
 * The hold against a headroom that already carries `held` for other requests, or null (pending). A request whose
 * cost cannot be bounded from its body holds all of a bounded headroom, and only when it is alone there.
 */
export function reserve(item: Pick<AdmissionItem, 'estimateMicro' | 'unbounded'>, room: Micro, held: Micro): Micro | null {
  const estimate = Math.max(item.estimateMicro, 0);
  if (item.unbounded && room < UNBOUNDED_ROOM) return held === 0 && room > 0 ? room : null;
  if (estimate <= room - held) return estimate;
  if (held === 0 && room > 0) return room;
  return null;
}

function limitReached(key: KeyRow, spent: Micro, ctx: PlanContext): MeteringRefusal {
  const spentText = `spent ${microToAud(spent)} of ${microToAud(key.limitMicro ?? 0)} AUD`;
  if (key.limitReset) {
    const resetsAt = limitPeriodAt(key.limitReset, ctx.now, ctx.timeZone).end;
    return new MeteringRefusal(
      'spend_limit_reached',
      `This API key has reached its ${key.limitReset} spending limit (${spentText} this period). It resets at ${resetsAt.toISOString()}; ` +
        'raise or remove the limit in the ModelBridge portal or with keys.update to continue sooner.',
      { spentMicro: spent, limitMicro: key.limitMicro, resetsAt, retryAfterSeconds: secondsUntil(resetsAt, ctx.now) },
    );
  }
  return new MeteringRefusal(
    'spend_limit_reached',
    `This API key has reached its spending limit (${spentText}). ` +
      'Raise or remove the limit in the ModelBridge portal or with keys.update to continue.',
    { spentMicro: spent, limitMicro: key.limitMicro },
  );
}

/** A personal balance's buckets in the current period (counters of an ended period count as zero). */
function bucketsOf(b: BalanceRow, ctx: PlanContext): PersonalBuckets {
  const { includedUsedMicro, overageUsedMicro } = periodCounters(b, ctx.period);
  return {
    includedMicro: b.includedMicro, includedUsedMicro, prepaidMicro: b.prepaidMicro, overageUsedMicro,
    overageAllowed: b.overageAllowed, overageCapMicro: b.overageCapMicro,
  };
}

// ---- Growth ----------------------------------------------------------------------------------------------------

/**
 * Grows the holds of a stream in flight by as much of `byMicro` as both headrooms have free — never more, so the
 * holds on a key or a payer never pass what its limit or balance leaves: what a stream can cost beyond its hold is
 * only what it produces between the last growth refused and its cut. Nothing for a key that can no longer be used
 * (revoked, expired, owner disabled, at its limit), so such a stream is cut at its hold; nothing for a request that
 * is already settled or released.
 */
function growOne(item: GrowItem, w: Working, ctx: PlanContext): GrowResult | Error {
  const hold = w.holds.get(item.hold.requestId);
  const key = hold && w.keys.get(hold.keyId);
  if (!hold || !key) return { grantedMicro: 0, keyHoldMicro: 0, payerHoldMicro: 0, memberHoldMicro: 0, refusal: null };
  const payer = hold.teamId ? w.teams.get(hold.teamId) : w.balances.get(hold.userId);
  if (!payer) return new MeteringRowMissing(`payer of hold ${hold.requestId}`);
  const member = hold.teamId ? w.members.get(memberRowId(hold.teamId, hold.userId)) : undefined;
  const granted = (grantedMicro: Micro, refusal: MeteringRefusal | null): GrowResult => ({
    grantedMicro, keyHoldMicro: hold.keyHoldMicro + grantedMicro, payerHoldMicro: hold.payerHoldMicro + grantedMicro,
    memberHoldMicro: hold.memberHoldMicro + (member?.budgetMicro != null ? grantedMicro : 0), refusal,
  });
  try {
    refuseUnusableKey(effectiveStatus(key.status, key.expiresAt, key.retireAt, ctx.now), key.ownerDisabled);
  } catch (err) {
    return granted(0, err as MeteringRefusal);
  }
  const keyFree = key.limitMicro === null ? UNBOUNDED_ROOM : atLimit(key, ctx) ? 0 : key.limitMicro - limitedSpend(key, ctx) - key.heldMicro;
  const memberFree = !member || member.budgetMicro === null ? UNBOUNDED_ROOM : member.budgetMicro - memberSpend(member, ctx) - member.heldMicro;
  const payerFree = ('userId' in payer ? personalAvailable(bucketsOf(payer, ctx)) : payer.balanceMicro) - payer.heldMicro;
  const by = Math.max(0, item.byMicro);
  const g = Math.max(0, Math.min(by, keyFree, payerFree, memberFree));
  const refusal = g === by ? null : keyFree < by ? limitUsedUp(key) : memberFree < by ? memberBudgetReached(member!, ctx) : balanceUsedUp('userId' in payer);
  if (g > 0) {
    key.heldMicro += g;
    key.touched = true;
    payer.heldMicro += g;
    payer.touched = true;
    let memberHoldMicro = hold.memberHoldMicro;
    if (member && member.budgetMicro !== null) {
      rollMemberPeriod(member, ctx);
      member.heldMicro += g;
      member.touched = true;
      memberHoldMicro += g;
    }
    const grown = { ...hold, keyHoldMicro: hold.keyHoldMicro + g, payerHoldMicro: hold.payerHoldMicro + g, memberHoldMicro };
    w.holds.set(hold.requestId, grown);
    const resized = w.changes.holdsResized.filter((r) => r.requestId !== hold.requestId);
    resized.push({ requestId: hold.requestId, keyHoldMicro: grown.keyHoldMicro, payerHoldMicro: grown.payerHoldMicro, memberHoldMicro });
    w.changes.holdsResized = resized;
  }
  return granted(g, refusal);
}

function limitUsedUp(key: KeyRow): MeteringRefusal {
  return new MeteringRefusal(
    'spend_limit_reached',
    `This API key’s spending limit (${microToAud(key.limitMicro ?? 0)} AUD, ${microToAud(key.spendMicro)} spent) is used up by this ` +
      'and the other requests in flight. Raise or remove the limit in the ModelBridge portal or with keys.update to continue.',
    { spentMicro: key.spendMicro, limitMicro: key.limitMicro },
  );
}

function balanceUsedUp(personal: boolean): MeteringRefusal {
  return new MeteringRefusal('insufficient_balance', personal
    ? 'Your plan’s included usage and prepaid balance are used up by this and the other requests in flight. Ask an installation admin for a top-up or a plan with overage.'
    : 'The team balance is used up by this and the other requests in flight. Ask an installation admin to top it up.');
}

// ---- Settlement and release -----------------------------------------------------------------------------------

function releaseOne(hold: Hold, w: Working, ctx: PlanContext): SettleResult | Error {
  const open = w.holds.get(hold.requestId);
  // Renewed by its live instance since the release job listed it: not abandoned after all.
  if (!open || open.deadlineAt.getTime() > ctx.now.getTime()) return { applied: false, costMicro: 0 };
  return settleOne({
    hold,
    settlement: {
      ...NO_TOKENS, costMicro: 0, outcome: 'abandoned', estimated: true,
      // No response was ever recorded for this request.
      httpStatus: 0, latencyMs: Math.max(0, ctx.now.getTime() - open.createdAt.getTime()),
    },
  }, w, ctx);
}

function settleOne({ hold: given, settlement: st }: SettlementItem, w: Working, ctx: PlanContext): SettleResult | Error {
  // The locked hold row decides: gone means settled or released already (here or anywhere), and nothing changes.
  const hold = w.holds.get(given.requestId);
  const key = hold && w.keys.get(hold.keyId);
  if (!hold || !key) return { applied: false, costMicro: 0 };
  if (!(hold.teamId ? w.teams.has(hold.teamId) : w.balances.has(hold.userId))) return new MeteringRowMissing(`payer of hold ${hold.requestId}`);
  w.holds.delete(hold.requestId);
  w.changes.holdsRemoved.push(hold.requestId);
  const cost = Math.max(0, st.costMicro);
  // A request counts in the budget period in which it is settled (docs/limits.md): its hold moved into the new
  // period with it, so a request in flight across the boundary is counted once, in the period it ends in.
  rollKeyPeriod(key, ctx);
  key.spendMicro += cost;
  key.periodSpendMicro += key.limitReset ? cost : 0;
  key.heldMicro -= hold.keyHoldMicro;
  key.inFlight = Math.max(0, key.inFlight - 1);
  key.requestCount += 1;
  key.touched = key.charged = true;
  correctRateTokens(key, hold, st, ctx);
  if (key.status === 'active' && key.limitMicro !== null && limitedSpend(key, ctx) >= key.limitMicro) key.status = 'limit_reached';
  if (cost > 0) w.changes.alerts.push(...keyCrossings(key, hold, ctx));
  const member = hold.teamId ? w.members.get(memberRowId(hold.teamId, hold.userId)) : undefined;
  if (member && (hold.memberHoldMicro > 0 || (member.budgetMicro !== null && cost > 0))) {
    rollMemberPeriod(member, ctx);
    member.heldMicro -= hold.memberHoldMicro;
    member.spendMicro += cost;
    member.touched = true;
    if (cost > 0) w.changes.alerts.push(...memberCrossings(member, hold, ctx));
  }
  const split = { includedMicro: 0, prepaidMicro: 0, overageMicro: 0, teamMicro: 0 };
  const debit = (account: LedgerEntryRow['account'], amount: Micro, periodStart: Date | null) => {
    if (amount !== 0)
      w.changes.ledger.push({
        account, userId: hold.teamId ? null : hold.userId, teamId: hold.teamId, keyId: hold.keyId, amountMicro: -amount,
        requestId: hold.requestId, periodStart, createdAt: ctx.now,
      });
  };
  if (hold.teamId) {
    const team = w.teams.get(hold.teamId)!;
    team.balanceMicro -= cost;
    team.heldMicro -= hold.payerHoldMicro;
    team.touched = true;
    team.charged ||= cost !== 0;
    split.teamMicro = cost;
    debit('team', cost, null);
    if (cost > 0) w.changes.alerts.push(...teamBalanceCrossings(team, hold, ctx));
  } else {
    const person = w.balances.get(hold.userId)!;
    person.heldMicro -= hold.payerHoldMicro;
    person.touched = true;
    if (cost !== 0) {
      // Never stale here: planBatch asks for the roll-over first.
      const s = splitPersonalDebit(cost, bucketsOf(person, ctx));
      person.includedUsedMicro += s.includedMicro;
      person.prepaidMicro -= s.prepaidMicro;
      person.overageUsedMicro += s.overageMicro;
      person.charged = true;
      Object.assign(split, s);
      debit('user_included', s.includedMicro, ctx.period.start);
      debit('user_prepaid', s.prepaidMicro, null);
      debit('user_overage', s.overageMicro, ctx.period.start);
      w.changes.alerts.push(...balanceCrossings(person, hold, ctx));
    }
  }
  w.changes.usageEvents.push(usageEvent(hold, st, cost, split, ctx));
  return { applied: true, costMicro: cost };
}

function usageEvent(hold: HoldRow, st: SettlementItem['settlement'], cost: Micro, split: { includedMicro: Micro; prepaidMicro: Micro; overageMicro: Micro; teamMicro: Micro }, ctx: PlanContext): UsageEventRow {
  return {
    requestId: hold.requestId, keyId: hold.keyId, userId: hold.userId, teamId: hold.teamId, model: hold.model, provider: hold.provider,
    endpoint: hold.endpoint, inputTokens: st.inputTokens, cachedInputTokens: st.cachedInputTokens, cacheWrite5mTokens: st.cacheWrite5mTokens,
    cacheWrite1hTokens: st.cacheWrite1hTokens, outputTokens: st.outputTokens, reasoningTokens: st.reasoningTokens, costMicro: cost, ...split, outcome: st.outcome,
    estimated: st.estimated, httpStatus: st.httpStatus, latencyMs: Math.max(0, Math.round(st.latencyMs)), streamed: hold.streamed,
    startedAt: hold.createdAt, createdAt: ctx.now,
  };
}

// ---- Changes --------------------------------------------------------------------------------------------------

/** Each touched row once, with its final values (sorted by id, the lock order). */
function collectChanges(w: Working, ctx: PlanContext): void {
  for (const k of sortedValues(w.keys))
    if (k.touched)
      w.changes.keys.push({
        id: k.id, heldMicro: k.heldMicro, status: k.status as KeyStatus, inFlight: k.inFlight, rateWindowStart: k.rateWindowStart,
        rateWindowRequests: k.rateWindowRequests, rateWindowTokens: k.rateWindowTokens, periodStart: k.periodStart, periodSpendMicro: k.periodSpendMicro,
        alertFiredPct: k.alertFiredPct,
        ...(k.charged ? { charged: { spendMicro: k.spendMicro, requestCount: k.requestCount, lastUsedAt: ctx.now } } : {}),
      });
  for (const b of sortedValues(w.balances))
    if (b.touched)
      w.changes.balances.push({
        userId: b.userId, heldMicro: b.heldMicro, alertFiredPct: b.alertFiredPct,
        ...(b.charged ? { charged: { includedUsedMicro: b.includedUsedMicro, prepaidMicro: b.prepaidMicro, overageUsedMicro: b.overageUsedMicro, updatedAt: ctx.now } } : {}),
      });
  for (const t of sortedValues(w.teams))
    if (t.touched) w.changes.teams.push({ id: t.id, heldMicro: t.heldMicro, alertFiredPct: t.alertFiredPct, ...(t.charged ? { balanceMicro: t.balanceMicro } : {}) });
  for (const m of sortedValues(w.members))
    if (m.touched) w.changes.members.push({ id: m.id, heldMicro: m.heldMicro, spendMicro: m.spendMicro, periodStart: m.periodStart, alertFiredPct: m.alertFiredPct });
}

/**
 * The rows after a batch's changes — what the SQL adapter remembers as the next batch's guess, and what the
 * property tests compare. The one place where a change becomes a row value.
 */
export function applyChanges(rows: MeteringRows, changes: MeteringChanges): MeteringRows {
  const keys = new Map(rows.keys);
  for (const c of changes.keys) {
    const k = keys.get(c.id)!;
    keys.set(c.id, {
      ...k, heldMicro: c.heldMicro, status: c.status, inFlight: c.inFlight, rateWindowStart: c.rateWindowStart, rateWindowRequests: c.rateWindowRequests,
      rateWindowTokens: c.rateWindowTokens, periodStart: c.periodStart, periodSpendMicro: c.periodSpendMicro, alertFiredPct: c.alertFiredPct,
      ...(c.charged ? { spendMicro: c.charged.spendMicro, requestCount: c.charged.requestCount } : {}),
    });
  }
  const balances = new Map(rows.balances);
  for (const c of changes.balances) {
    const b = balances.get(c.userId)!;
    balances.set(c.userId, { ...b, heldMicro: c.heldMicro, alertFiredPct: c.alertFiredPct, ...(c.charged ? { includedUsedMicro: c.charged.includedUsedMicro, prepaidMicro: c.charged.prepaidMicro, overageUsedMicro: c.charged.overageUsedMicro } : {}) });
  }
  const teams = new Map(rows.teams);
  for (const c of changes.teams) {
    const t = teams.get(c.id)!;
    teams.set(c.id, { ...t, heldMicro: c.heldMicro, alertFiredPct: c.alertFiredPct, ...(c.balanceMicro !== undefined ? { balanceMicro: c.balanceMicro } : {}) });
  }
  const members = new Map(rows.members);
  for (const c of changes.members) members.set(c.id, { ...members.get(c.id)!, heldMicro: c.heldMicro, spendMicro: c.spendMicro, periodStart: c.periodStart, alertFiredPct: c.alertFiredPct });
  const holds = new Map(rows.holds);
  for (const r of changes.holdsResized)
    holds.set(r.requestId, { ...holds.get(r.requestId)!, keyHoldMicro: r.keyHoldMicro, payerHoldMicro: r.payerHoldMicro, memberHoldMicro: r.memberHoldMicro });
  for (const id of changes.holdsRemoved) holds.delete(id);
  for (const h of changes.holdsPlaced) holds.set(h.requestId, h);
  return { keys, balances, teams, members, holds, models: rows.models };
}

function sorted(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort();
}

function sortedValues<T>(m: Map<string, T>): T[] {
  return [...m.keys()].sort().map((id) => m.get(id)!);
}
