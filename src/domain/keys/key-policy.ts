import { localDateOf, startOfLocalDate } from '../billing/period.js';
import { MAX_EXPIRY_DAYS } from '../expiry.js';
import type { Micro } from '../money.js';

/**
 * Guard-rails on new keys (docs/security.md, "Guard-rails on new keys"), switched on by the installation admin for
 * every key and by a team's owners and admins for the team's keys. A pure rule: the stored policies and the requested
 * key in, the violations out; KeysService asks it on create and update, the team and admin pages on existing keys.
 */
export interface KeyPolicy {
  /** Every new key needs a spending limit. */
  requireLimit: boolean;
  /** Every new key needs an expiry at most this many days ahead (null: no rule). */
  maxExpiryDays: number | null;
  /** Key names are unique per owner (one key per tool), ignoring case, among keys that still work. */
  uniqueNames: boolean;
  /**
   * Keys are due for rotation this many days after they were created (a successor counts from its rotation); null: no
   * rule. Unlike the other rules it judges keys that exist: an older key keeps working, it is only "rotation due".
   */
  maxKeyAgeDays: number | null;
}

export const NO_KEY_POLICY: KeyPolicy = Object.freeze({ requireLimit: false, maxExpiryDays: null, uniqueNames: false, maxKeyAgeDays: null });
export const MAX_POLICY_EXPIRY_DAYS = MAX_EXPIRY_DAYS;
export const MAX_POLICY_KEY_AGE_DAYS = MAX_EXPIRY_DAYS;

export type PolicySource = 'installation' | 'team';

/** The policy in force for one key, each rule remembering who imposed it (so a refusal can say so). */
export interface EffectivePolicy {
  requireLimit: PolicySource | null;
  maxExpiryDays: { days: number; by: PolicySource } | null;
  uniqueNames: PolicySource | null;
  maxKeyAgeDays: { days: number; by: PolicySource } | null;
}

export type PolicyRule = 'limit_required' | 'expiry_required' | 'expiry_too_far' | 'name_taken';

/** One broken rule, on the field to change, with a message that says what to change. */
export interface PolicyViolation {
  rule: PolicyRule;
  field: 'spendLimitMicro' | 'expiresAt' | 'name';
  message: string;
}

export interface RequestedKey {
  name: string;
  spendLimitMicro: Micro | null;
  expiresAt: Date | null;
}

export interface PolicyContext {
  now: Date;
  /** Installation time zone: "N days ahead" ends at the end of that local day, as the portal's date field means it. */
  timeZone: string;
  /** Names of the owner's other keys that still work (same owner, same team or personal). */
  existingNames: readonly string[];
}

/** The stricter of the installation's policy and the team's (for team keys); the installation wins a tie. */
export function effectivePolicy(installation: KeyPolicy, team: KeyPolicy | null): EffectivePolicy {
  const by = (inst: boolean, t: boolean | undefined): PolicySource | null => (inst ? 'installation' : t ? 'team' : null);
  return {
    requireLimit: by(installation.requireLimit, team?.requireLimit),
    maxExpiryDays: fewestDays(installation.maxExpiryDays, team?.maxExpiryDays ?? null),
    uniqueNames: by(installation.uniqueNames, team?.uniqueNames),
    maxKeyAgeDays: fewestDays(installation.maxKeyAgeDays, team?.maxKeyAgeDays ?? null),
  };
}

/** The stricter (fewer days) of two day rules; the installation wins a tie. */
function fewestDays(installation: number | null, team: number | null): { days: number; by: PolicySource } | null {
  if (installation !== null && (team === null || installation <= team)) return { days: installation, by: 'installation' };
  return team === null ? null : { days: team, by: 'team' };
}

const DAY_MS = 24 * 3600_000;

/**
 * When a key is due for rotation: `days` whole 24-hour days after it was created (a successor is created when its
 * predecessor is rotated, so the clock restarts at each rotation). Exact instants rather than local days: the
 * warnings and the scheduled rotation fire at a time anyone can compute from createdAt.
 */
export function rotateByOf(createdAt: Date, days: number | null): Date | null {
  return days === null ? null : new Date(createdAt.getTime() + days * DAY_MS);
}

/** The latest expiry the policy allows for a key made now: the end of the local day `days` ahead. */
export function latestAllowedExpiry(days: number, now: Date, timeZone: string): Date {
  const today = localDateOf(now, timeZone);
  return startOfLocalDate(today.year, today.month, today.day + days + 1, timeZone);
}

/** Every rule of the policy the key breaks; empty when it may be created (or kept) as it is. */
export function keyPolicyViolations(policy: EffectivePolicy, key: RequestedKey, ctx: PolicyContext): PolicyViolation[] {
  const out: PolicyViolation[] = [];
  if (policy.requireLimit && key.spendLimitMicro === null)
    out.push({ rule: 'limit_required', field: 'spendLimitMicro', message: `${requires(policy.requireLimit)} a spending limit on every key: enter one.` });
  const expiry = policy.maxExpiryDays;
  if (expiry) {
    const latest = latestAllowedExpiry(expiry.days, ctx.now, ctx.timeZone);
    const within = `within ${plural(expiry.days, 'day')} (by ${localDateText(latest, ctx.timeZone)})`;
    if (key.expiresAt === null) out.push({ rule: 'expiry_required', field: 'expiresAt', message: `${requires(expiry.by)} an expiry ${within}: choose a date.` });
    else if (key.expiresAt.getTime() > latest.getTime())
      out.push({ rule: 'expiry_too_far', field: 'expiresAt', message: `${requires(expiry.by)} an expiry ${within}: choose an earlier date.` });
  }
  if (policy.uniqueNames) {
    const name = normaliseName(key.name);
    if (ctx.existingNames.some((n) => normaliseName(n) === name))
      out.push({ rule: 'name_taken', field: 'name', message: `${requires(policy.uniqueNames)} one key per name, and you already have a key called '${key.name.trim()}': choose another name, or rotate that key.` });
  }
  return out;
}

/** The policy in words for the create form ("This team requires a spending limit and an expiry within 30 days."). */
export function describePolicy(policy: EffectivePolicy): string | null {
  const parts = [
    policy.requireLimit && 'a spending limit',
    policy.maxExpiryDays && `an expiry within ${plural(policy.maxExpiryDays.days, 'day')}`,
    policy.uniqueNames && 'a name none of your other keys has',
  ].filter((p): p is string => typeof p === 'string');
  const rotation = policy.maxKeyAgeDays && ` Keys are due for rotation ${plural(policy.maxKeyAgeDays.days, 'day')} after they are created.`;
  if (!parts.length) return rotation ? rotation.trim() : null;
  const sources = new Set([policy.requireLimit, policy.maxExpiryDays?.by, policy.uniqueNames].filter((s) => s));
  const who = sources.size > 1 ? 'This installation and team require' : requires([...sources][0] as PolicySource);
  return `${who} ${parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : parts[0]} for every new key.${rotation || ''}`;
}

/** Whether a policy switches anything on. */
export function hasRules(policy: KeyPolicy): boolean {
  return policy.requireLimit || policy.maxExpiryDays !== null || policy.uniqueNames || policy.maxKeyAgeDays !== null;
}

function requires(by: PolicySource): string {
  return by === 'team' ? 'This team requires' : 'This installation requires';
}

function normaliseName(name: string): string {
  return name.trim().toLowerCase();
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The local date on which a key expiring at `end` (the start of the next local day) last works. */
function localDateText(end: Date, timeZone: string): string {
  const d = localDateOf(new Date(end.getTime() - 1), timeZone);
  return `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}
