import type { Db, Queryable } from '../../db/knex.js';
import { toBool, toDateOrNull } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { isInstallationAdmin, type Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, forbidden, notFound, throwIfFieldErrors } from '../errors.js';
import { requireTeamManager, teamRoleOf } from '../teams/membership.js';
import type { ApiKey } from './key.js';
import {
  effectivePolicy, keyPolicyViolations, MAX_POLICY_EXPIRY_DAYS, MAX_POLICY_KEY_AGE_DAYS, NO_KEY_POLICY, rotateByOf, type EffectivePolicy, type KeyPolicy, type PolicyViolation,
  type RequestedKey,
} from './key-policy.js';

const INSTALLATION = 'installation';

/** A key that breaks the policy now in force: listed for its people to fix, never changed or broken by the policy. */
export interface ViolatingKey {
  key: ApiKey;
  violations: PolicyViolation[];
}

export interface KeyPolicyDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  timeZone: string;
  /** The keys an actor may see (KeysService.list): the keys checked against the policy. */
  listKeys: (filter: { teamId?: string; all?: boolean }, actor: Actor) => Promise<ApiKey[]>;
}

/**
 * Where the guard-rails on new keys are stored and set: the installation's by installation admins, a team's by its
 * owners and admins (under the lock of their membership, like the team's other controls). The rule itself is the
 * pure key-policy.ts; KeysService enforces it through policyInForce.
 */
export class KeyPolicyService {
  constructor(private readonly deps: KeyPolicyDeps) {}

  async installation(q: Queryable = this.deps.db): Promise<KeyPolicy> {
    return installationPolicy(q);
  }

  async setInstallation(changes: Partial<KeyPolicy>, actor: Actor): Promise<KeyPolicy> {
    if (!isInstallationAdmin(actor)) throw forbidden('Only installation admins set the installation’s key guard-rails.');
    const patch = policyColumns(changes);
    return withTransaction(this.deps.db, async (tx) => {
      if (Object.keys(patch).length) await tx('installation_settings').where({ id: INSTALLATION }).update(patch);
      await this.deps.audit.record(tx, actor, 'installation.key_policy', { type: 'installation', id: INSTALLATION }, patch);
      return installationPolicy(tx);
    });
  }

  /** A team's own policy; any member (and installation admins) may read it: it is what their new keys must meet. */
  async team(teamId: string, actor: Actor, q: Queryable = this.deps.db): Promise<KeyPolicy> {
    if (!(await teamRoleOf(q, teamId, actor.userId)) && !isInstallationAdmin(actor)) throw notFound('Team');
    return teamPolicy(q, teamId);
  }

  async setTeam(teamId: string, changes: Partial<KeyPolicy>, actor: Actor): Promise<KeyPolicy> {
    const patch = policyColumns(changes);
    return withTransaction(this.deps.db, async (tx) => {
      await requireTeamManager(tx, teamId, actor, 'Only team owners and admins set the team’s key guard-rails.');
      if (Object.keys(patch).length) await tx('teams').where({ id: teamId }).update(patch);
      await this.deps.audit.record(tx, actor, 'team.key_policy', { type: 'team', id: teamId }, patch);
      return teamPolicy(tx, teamId);
    });
  }

  /** The policy a new key of this owner (a team, or personal) must meet. */
  async inForce(teamId: string | null, q: Queryable = this.deps.db): Promise<EffectivePolicy> {
    return policyInForce(q, teamId);
  }

  /**
   * The keys that still work and break the policy now in force: a team's (for its owners and admins) or the whole
   * installation's (for installation admins), each judged by its own team's policy and the installation's.
   */
  async violatingKeys(scope: { teamId: string } | { all: true }, actor: Actor): Promise<ViolatingKey[]> {
    // An installation admin looking at a team they are not in sees its keys as an admin (all: true), like its page.
    const asAdmin = !('teamId' in scope) || !(await teamRoleOf(this.deps.db, scope.teamId, actor.userId));
    const keys = await this.deps.listKeys({ ...('teamId' in scope && { teamId: scope.teamId }), ...(asAdmin && { all: true }) }, actor);
    const live = keys.filter(countsForPolicy);
    const installation = await installationPolicy(this.deps.db);
    const teams = new Map<string, KeyPolicy>();
    for (const teamId of new Set(live.map((k) => k.teamId).filter((t) => t !== null))) teams.set(teamId, await teamPolicy(this.deps.db, teamId));
    const now = this.deps.clock.now();
    return live
      .map((key) => {
        const policy = effectivePolicy(installation, key.teamId ? teams.get(key.teamId) ?? null : null);
        const existingNames = live.filter((o) => o.id !== key.id && sameOwner(o, key)).map((o) => o.name);
        return { key, violations: keyPolicyViolations(policy, key, { now, timeZone: this.deps.timeZone, existingNames }) };
      })
      .filter((v) => v.violations.length > 0);
  }
}

/**
 * When each key is due for rotation under the policy now in force (its team's and the installation's, the stricter
 * wins): null for keys no rule judges, and for keys that no longer work or were rotated already (their successor is
 * the one due). Read per call, so a policy change moves every key's date at once.
 */
export async function rotateByForKeys(q: Queryable, keys: ReadonlyArray<Pick<ApiKey, 'id' | 'teamId' | 'createdAt' | 'status' | 'rotatedToId'>>): Promise<Map<string, Date | null>> {
  const installation = await installationPolicy(q);
  const teams = new Map<string, KeyPolicy>();
  for (const teamId of new Set(keys.map((k) => k.teamId).filter((t) => t !== null))) teams.set(teamId, await teamPolicy(q, teamId).catch(() => NO_KEY_POLICY));
  return new Map(keys.map((k) => {
    if (!countsForPolicy(k)) return [k.id, null];
    const policy = effectivePolicy(installation, k.teamId ? teams.get(k.teamId) ?? null : null);
    return [k.id, rotateByOf(k.createdAt, policy.maxKeyAgeDays?.days ?? null)];
  }));
}

/** The fewest days any policy (the installation's or a team's) allows a key to age: a bound for the job's queries. */
export async function shortestKeyAgeDays(q: Queryable): Promise<number | null> {
  const inst = (await installationPolicy(q)).maxKeyAgeDays;
  const row = (await q('teams').whereNotNull('key_max_age_days').min({ days: 'key_max_age_days' }).first()) as { days: unknown } | undefined;
  const team = row?.days === null || row?.days === undefined ? null : Number(row.days);
  return inst === null ? team : team === null ? inst : Math.min(inst, team);
}

/** Read in the transaction that creates or changes the key, after the caller's membership is locked. */
export async function policyInForce(q: Queryable, teamId: string | null): Promise<EffectivePolicy> {
  return effectivePolicy(await installationPolicy(q), teamId ? await teamPolicy(q, teamId) : null);
}

/**
 * Refuses a key (new, or as a change would leave it) that breaks the policy in force: one BAD_INPUT naming each field
 * to change. `fields`: only the rules on these fields (a change is judged on what it changes, so a key made before a
 * rule can still be renamed); all when absent.
 */
export async function enforceKeyPolicy(
  q: Queryable,
  key: RequestedKey & { ownerId: string; teamId: string | null; id?: string },
  ctx: { now: Date; timeZone: string },
  fields?: ReadonlyArray<PolicyViolation['field']>,
): Promise<void> {
  const policy = await policyInForce(q, key.teamId);
  const existingNames = policy.uniqueNames ? await takenKeyNames(q, key, ctx.now) : [];
  const violations = keyPolicyViolations(policy, key, { ...ctx, existingNames }).filter((v) => !fields || fields.includes(v.field));
  throwIfFieldErrors(Object.fromEntries(violations.map((v) => [v.field, v.message])));
}

/**
 * Names a new key of this owner may not take: those of their other keys that still work. A key in its rotation grace
 * period does not count: it is on its way out, and its successor carries its name.
 */
async function takenKeyNames(q: Queryable, key: { ownerId: string; teamId: string | null; id?: string }, now: Date): Promise<string[]> {
  const rows: Array<{ name: string; expires_at: unknown }> = await q('api_keys')
    .where({ owner_id: key.ownerId })
    .modify((b) => (key.teamId ? b.where('team_id', key.teamId) : b.whereNull('team_id')))
    .modify((b) => (key.id ? b.whereNot('id', key.id) : b))
    .whereIn('status', LIVE_STATUSES)
    .whereNull('rotated_to_id')
    .select('name', 'expires_at');
  return rows.filter((r) => { const at = toDateOrNull(r.expires_at); return !at || at.getTime() > now.getTime(); }).map((r) => r.name);
}

/** Keys that still work, or will again (a paused key): the ones a policy judges. */
const LIVE_STATUSES = ['active', 'limit_reached', 'disabled'] as const;

function countsForPolicy(key: Pick<ApiKey, 'status' | 'rotatedToId'>): boolean {
  return (LIVE_STATUSES as readonly string[]).includes(key.status) && !key.rotatedToId;
}

function sameOwner(a: ApiKey, b: ApiKey): boolean {
  return a.ownerId === b.ownerId && a.teamId === b.teamId;
}

async function installationPolicy(q: Queryable): Promise<KeyPolicy> {
  const row = await q('installation_settings').where({ id: INSTALLATION }).first();
  return row ? policyOf(row) : NO_KEY_POLICY;
}

async function teamPolicy(q: Queryable, teamId: string): Promise<KeyPolicy> {
  const row = await q('teams').where({ id: teamId }).first('key_require_limit', 'key_max_expiry_days', 'key_unique_names', 'key_max_age_days');
  if (!row) throw notFound('Team');
  return policyOf(row);
}

function policyOf(row: Record<string, unknown>): KeyPolicy {
  const days = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    requireLimit: toBool(row.key_require_limit), maxExpiryDays: days(row.key_max_expiry_days), uniqueNames: toBool(row.key_unique_names),
    maxKeyAgeDays: days(row.key_max_age_days),
  };
}

/** Absent fields stay as they are; maxExpiryDays or maxKeyAgeDays null removes that rule. */
function policyColumns(changes: Partial<KeyPolicy>): Record<string, unknown> {
  const days = changes.maxExpiryDays;
  if (days !== undefined && days !== null && (!Number.isInteger(days) || days < 1 || days > MAX_POLICY_EXPIRY_DAYS))
    throw badInput(`The longest expiry is a whole number of days from 1 to ${MAX_POLICY_EXPIRY_DAYS}, or none.`, { maxExpiryDays: `A whole number of days from 1 to ${MAX_POLICY_EXPIRY_DAYS}, or empty.` });
  const age = changes.maxKeyAgeDays;
  if (age !== undefined && age !== null && (!Number.isInteger(age) || age < 1 || age > MAX_POLICY_KEY_AGE_DAYS))
    throw badInput(`The longest key age is a whole number of days from 1 to ${MAX_POLICY_KEY_AGE_DAYS}, or none.`, { maxKeyAgeDays: `A whole number of days from 1 to ${MAX_POLICY_KEY_AGE_DAYS}, or empty.` });
  return {
    ...(changes.requireLimit !== undefined && { key_require_limit: changes.requireLimit }),
    ...(days !== undefined && { key_max_expiry_days: days }),
    ...(changes.uniqueNames !== undefined && { key_unique_names: changes.uniqueNames }),
    ...(age !== undefined && { key_max_age_days: age }),
  };
}
