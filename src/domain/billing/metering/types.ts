import type { KeyStatus } from '../../keys/key.js';
import type { CatalogModel } from '../../models/models.service.js';
import type { TokenUsage } from '../../models/pricing.js';
import type { Micro } from '../../money.js';
import type { PersonalBuckets } from '../debit-order.js';
import type { Period } from '../period.js';
import type { MeteringRefusal } from '../refusal.js';
import type { LimitReset, RateLimits, RateStatus } from '../../keys/controls.js';

/**
 * The vocabulary of metering, shared by the pure planner (planner.ts), its SQL adapter (sql.ts) and the service
 * (metering.service.ts). Rows are named fields in domain units (micro-AUD integers, Dates): no positional arrays.
 */

/** `cut_at_limit`: a stream ended by the proxy where its hold could not grow (the key's limit or the payer's balance). */
export type UsageOutcome = 'ok' | 'upstream_error' | 'client_aborted' | 'abandoned' | 'cut_at_limit';

/** An admitted request: what was reserved, for whom. Kept in memory by the proxy and as a row in `holds`. */
export interface Hold {
  requestId: string;
  keyId: string;
  userId: string;
  teamId: string | null;
  /** Reserved against the key's limit (capped at the key's headroom when the request is alone there). */
  keyHoldMicro: Micro;
  /** Reserved against the payer's balance: never less than the estimate unless capped at the payer's own headroom. */
  payerHoldMicro: Micro;
  /** Reserved against the key owner's member budget in its team (0 for personal keys and members without one). */
  memberHoldMicro: Micro;
  /** Tokens counted in the key's rate window at admission (its estimate), replaced by the real count at settlement. */
  rateTokens: number;
  /** The key's rate limits after this admission, for x-ratelimit-* (not stored; absent on a hold read back). */
  rate?: RateStatus;
  model: string;
  provider: string;
  endpoint: string;
  streamed: boolean;
  createdAt: Date;
}

/** What never changes about a key: which it is and who pays. */
export interface KeyIdentity {
  id: string;
  ownerId: string;
  teamId: string | null;
}

export interface AdmissionRequest {
  requestId: string;
  keyId: string;
  /** The key's owner and team, as authentication found them (they never change); looked up when absent. */
  ownerId?: string;
  teamId?: string | null;
  /** Estimated maximum cost of the request (input size + max output at catalog prices). */
  estimateMicro: Micro;
  /** Estimated tokens (input bound + output bound), counted against the key's tokens-per-minute limit. */
  estimatedTokens?: number;
  /**
   * The request's cost cannot be bounded from its body (file ids, documents by URL, server-side tools): it holds
   * the whole remaining headroom of its key and payer, so it is admitted only when nothing else is held there.
   */
  unbounded?: boolean;
  model: string;
  provider: string;
  endpoint: string;
  streamed: boolean;
  /**
   * The catalog entry the estimate was computed from (possibly remembered by the proxy). Admission checks it is
   * still the catalog's, and refuses with CatalogEntryChanged when not, so a price change or a disabled model
   * applies to the very next request on every instance.
   */
  catalog?: CatalogModel;
}

/** An admission as the planner sees it: who pays is known (re-checked against the locked key row). */
export interface AdmissionItem extends AdmissionRequest {
  ownerId: string;
  teamId: string | null;
}

/** A request's outcome: the tokens of each kind it was billed for (recorded apart), and their cost. */
export interface Settlement extends TokenUsage {
  costMicro: Micro;
  outcome: UsageOutcome;
  estimated: boolean;
  httpStatus: number;
  latencyMs: number;
}

export interface SettlementItem {
  hold: Hold;
  settlement: Settlement;
}

export interface SettleResult {
  /** false when this request id was already settled or released: nothing was charged twice. */
  applied: boolean;
  costMicro: Micro;
}

/**
 * Release of a hold whose deadline has passed (its request's process died, or its admission reply was lost):
 * settled at cost 0 as `abandoned`, but only if the locked hold row is still past its deadline — a live instance
 * may have renewed it since the release job listed it.
 */
export interface ReleaseItem {
  hold: Hold;
}

/**
 * More room for a stream in flight, ahead of its output: `byMicro` more on the hold against the key's limit and on
 * the hold against the payer's balance, as far as both headrooms go (a stream is admitted with a hold for its input
 * and a first output increment, not for its whole output bound; docs/metering.md, "Holds that grow").
 */
export interface GrowItem {
  hold: Hold;
  byMicro: Micro;
}

export interface GrowResult {
  /** What was added to each side: byMicro, less when a headroom ran out, 0 when none is left or the request is over. */
  grantedMicro: Micro;
  /** The hold on each side after it (0 when the request was already settled or released). */
  keyHoldMicro: Micro;
  payerHoldMicro: Micro;
  memberHoldMicro: Micro;
  /** Why less than asked was granted: the limit or balance that ran out, or the key that can no longer be used. */
  refusal: MeteringRefusal | null;
}

/** A row an operation needs is not there (a payer deleted under a hold): refused for good, never retried. */
export class MeteringRowMissing extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'MeteringRowMissing';
  }
}

export type MeteringOp = { admit: AdmissionItem } | { settle: SettlementItem } | { release: ReleaseItem } | { grow: GrowItem };
export type OpResult = Hold | SettleResult | GrowResult | Error;

// ---- Locked rows, as the planner reads them ------------------------------------------------------------------

export interface KeyRow {
  id: string;
  ownerId: string;
  teamId: string | null;
  /** As stored (the expiry job lags the clock; the planner judges expiry itself). */
  status: KeyStatus;
  spendMicro: Micro;
  heldMicro: Micro;
  limitMicro: Micro | null;
  requestCount: number;
  expiresAt: Date | null;
  retireAt: Date | null;
  ownerDisabled: boolean;
  limitReset: LimitReset | null;
  /** Spend since periodStart (a periodic limit's counter; it belongs to an ended period when periodStart is older). */
  periodSpendMicro: Micro;
  periodStart: Date | null;
  /** What the key may call: its own list narrowed by its team's (null: every model). */
  allowedModels: string[] | null;
  /** The key's rate limits, its team's defaults filled in. */
  rateLimits: RateLimits;
  inFlight: number;
  rateWindowStart: Date | null;
  rateWindowRequests: number;
  rateWindowTokens: number;
  /** Alert thresholds on the limit (null: the defaults), and the highest fired in the limit's period (alerts.ts). */
  alertThresholds: number[] | null;
  alertFiredPct: number;
  /**
   * The stored settings behind limitReset, allowedModels and rateLimits, as read (key columns and team_* ones):
   * metering never changes them, and the SQL adapter remembers them as they were so its guess of the row matches.
   */
  settings: Readonly<Record<string, unknown>>;
}

/** A team member's budget row (team_members), locked with the team keys of that member. */
export interface MemberRow {
  /** memberRowId(teamId, userId). */
  id: string;
  budgetMicro: Micro | null;
  /** Spend of the member's team keys since periodStart (the billing month); an older periodStart counts as 0. */
  spendMicro: Micro;
  heldMicro: Micro;
  periodStart: Date | null;
  /** The team's alert thresholds on member budgets (null: the defaults), and the highest fired this month. */
  alertThresholds: number[] | null;
  alertFiredPct: number;
  /** The thresholds as stored (teams.alert_thresholds), remembered as read, like KeyRow.settings. */
  storedThresholds?: unknown;
}

export interface BalanceRow {
  userId: string;
  /** As stored: they belong to `periodStart`'s period, which may have ended (see countersInPeriod). */
  includedUsedMicro: Micro;
  overageUsedMicro: Micro;
  prepaidMicro: Micro;
  heldMicro: Micro;
  periodStart: Date;
  /** The user's plan (read with the row, not locked). */
  includedMicro: Micro;
  overageAllowed: boolean;
  overageCapMicro: Micro | null;
  /** The user's thresholds on the share of included usage used this month (null: the defaults), the highest fired. */
  alertThresholds: number[] | null;
  alertFiredPct: number;
  /** users.alert_thresholds as read (remembered as it was). */
  storedThresholds?: unknown;
}

export interface TeamRow {
  id: string;
  balanceMicro: Micro;
  heldMicro: Micro;
  /** The team's thresholds (null: the defaults) on the share spent of its balance at the last top-up (`alertBaseMicro`, at `alertSince`). */
  alertThresholds: number[] | null;
  alertBaseMicro: Micro | null;
  alertSince: Date | null;
  alertFiredPct: number;
  /** teams.alert_thresholds as read. */
  storedThresholds?: unknown;
}

export interface HoldRow extends Hold {
  deadlineAt: Date;
}

export interface MeteringRows {
  keys: Map<string, KeyRow>;
  balances: Map<string, BalanceRow>;
  teams: Map<string, TeamRow>;
  members: Map<string, MemberRow>;
  holds: Map<string, HoldRow>;
  /** The catalog entries admissions were estimated from (read, not locked). */
  models: Map<string, CatalogModel>;
}

/** The ids a batch must lock (and read), each sorted: the lock order is keys → balances → teams → members → holds. */
export interface MeteringIds {
  keys: string[];
  users: string[];
  teams: string[];
  members: string[];
  requests: string[];
  models: string[];
}

// ---- What a batch changes -------------------------------------------------------------------------------------

/** New values of a key's mutable fields (the counters of every touched key, and spend and last use when charged). */
export interface KeyChange {
  id: string;
  heldMicro: Micro;
  status: KeyStatus;
  inFlight: number;
  rateWindowStart: Date | null;
  rateWindowRequests: number;
  rateWindowTokens: number;
  periodStart: Date | null;
  periodSpendMicro: Micro;
  alertFiredPct: number;
  charged?: { spendMicro: Micro; requestCount: number; lastUsedAt: Date };
}

export interface MemberChange {
  id: string;
  heldMicro: Micro;
  spendMicro: Micro;
  periodStart: Date | null;
  alertFiredPct: number;
}

export const ALERT_EVENT_TYPES = ['key.limit_threshold', 'key.limit_reached', 'member.budget_threshold', 'balance.threshold', 'team.balance_threshold'] as const;
export type AlertEventType = (typeof ALERT_EVENT_TYPES)[number];

/** A threshold crossed by a settlement: recorded once per (type, scope, period start, threshold). */
export interface AlertFiring {
  eventType: AlertEventType;
  /** The key id, the membership row id, the user id (balance) or the team id. */
  scopeId: string;
  /** The start of the limit's period (the epoch for a lifetime limit; the last top-up for a team balance). */
  periodStart: Date;
  threshold: number;
  userId: string;
  teamId: string | null;
  keyId: string;
  spentMicro: Micro;
  limitMicro: Micro;
  requestId: string;
  createdAt: Date;
}

export interface BalanceChange {
  userId: string;
  heldMicro: Micro;
  alertFiredPct: number;
  /** Present when the batch charged this balance (never for a balance in an ended period: it is rolled over first). */
  charged?: { includedUsedMicro: Micro; prepaidMicro: Micro; overageUsedMicro: Micro; updatedAt: Date };
}

export interface TeamChange {
  id: string;
  heldMicro: Micro;
  alertFiredPct: number;
  balanceMicro?: Micro;
}

export interface UsageEventRow extends TokenUsage {
  requestId: string;
  keyId: string;
  userId: string;
  teamId: string | null;
  model: string;
  provider: string;
  endpoint: string;
  costMicro: Micro;
  includedMicro: Micro;
  prepaidMicro: Micro;
  overageMicro: Micro;
  teamMicro: Micro;
  outcome: UsageOutcome;
  estimated: boolean;
  httpStatus: number;
  latencyMs: number;
  streamed: boolean;
  startedAt: Date;
  createdAt: Date;
}

export type LedgerAccount = 'user_included' | 'user_prepaid' | 'user_overage' | 'team';

export interface LedgerEntryRow {
  account: LedgerAccount;
  userId: string | null;
  teamId: string | null;
  keyId: string;
  /** Negative: a debit. Never 0 (the planner leaves empty debits out). */
  amountMicro: Micro;
  requestId: string;
  /** The billing period of an included/overage debit (null for prepaid and team). */
  periodStart: Date | null;
  createdAt: Date;
}

/** Everything a batch writes, named: the SQL adapter turns it into statements and into remembered rows. */
export interface MeteringChanges {
  keys: KeyChange[];
  balances: BalanceChange[];
  teams: TeamChange[];
  members: MemberChange[];
  holdsPlaced: HoldRow[];
  holdsRemoved: string[];
  /** Holds of requests in flight that grew: their new amounts on each side. */
  holdsResized: Array<{ requestId: string; keyHoldMicro: Micro; payerHoldMicro: Micro; memberHoldMicro: Micro }>;
  usageEvents: UsageEventRow[];
  ledger: LedgerEntryRow[];
  /** Thresholds crossed by the batch's settlements (empty on the common path: no statement then). */
  alerts: AlertFiring[];
}

export interface PlanContext {
  now: Date;
  /** The billing period (the month of personal buckets and member budgets). */
  period: Period;
  /** The installation time zone, in which keys' budget periods are days, weeks and months. */
  timeZone: string;
  holdTtlMs: number;
}

export interface BatchPlan {
  /** One per op, in the ops' order. */
  results: OpResult[];
  changes: MeteringChanges;
  /** Users whose stored period ended and who must be rolled over before this batch can charge them (then plan again). */
  rolloverDue: string[];
}

export type { PersonalBuckets };
