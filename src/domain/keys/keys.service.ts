import type { Knex } from 'knex';
import type { Db, Queryable } from '../../db/knex.js';
import { withTransaction } from '../../db/transaction.js';
import { generateSecret, hashSecret, lastFour } from '../../auth/secret-format.js';
import { isInstallationAdmin, systemActor, type Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, collectFieldErrors, conflict, forbidden, notFound, throwIfFieldErrors } from '../errors.js';
import { SECRET_EVENT_TYPE } from '../events/event-types.js';
import { subscribedEndpoints } from '../events/events.js';
import { recordKeyEvent } from '../events/key-events.js';
import { newId } from '../ids.js';
import { validateExpiry } from '../expiry.js';
import { validateName } from '../names.js';
import { MAX_AMOUNT_MICRO, type Micro } from '../money.js';
import { lockedTeamRoleOf, teamRoleOf } from '../teams/membership.js';
import { teamPermissions, type TeamRole } from '../teams/roles.js';
import { keyFromRow, statusForLimit, type ApiKey, type KeyStatus } from './key.js';
import { enforceKeyPolicy, rotateByForKeys } from './key-policy.service.js';
import { controlColumns, replaceTags, tagsOf, type KeyControlsInput, type ResolveModel } from './key-settings.js';

export const KEY_NAME_MAX = 100;
/** Longest rotation grace period: long enough for a slow deploy, short enough that old keys do not linger. */
export const MAX_GRACE_SECONDS = 30 * 24 * 3600;

export interface CreateKeyInput extends KeyControlsInput {
  name: string;
  spendLimitMicro?: Micro | null;
  expiresAt?: Date | null;
  teamId?: string | null;
  /** Scheduled rotation (docs/webhooks.md): only with an endpoint of the key's owner that receives the new secret. */
  autoRotate?: boolean;
}

export interface ListKeysFilter {
  teamId?: string;
  status?: KeyStatus;
  /** Installation admins only: every key of the installation (incident response). */
  all?: boolean;
}

export interface KeysDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  /** The installation time zone: keys' budget periods are its days, weeks and months. */
  timeZone: string;
  /** Model ids and aliases of allow-lists are resolved against the catalog. */
  resolveModel: ResolveModel;
}

type Access = 'view' | 'manage' | 'revoke';

export class KeysService {
  constructor(private readonly deps: KeysDeps) {}

  /** Every problem of a new key's fields at once, keyed by field (name, spendLimitMicro, expiresAt); empty when fine. */
  inputErrors(input: Partial<Pick<CreateKeyInput, 'name' | 'spendLimitMicro' | 'expiresAt'>>): Record<string, string> {
    return collectFieldErrors({
      ...('name' in input && { name: () => validateName(input.name ?? '', 'A key name', KEY_NAME_MAX) }),
      ...('spendLimitMicro' in input && { spendLimitMicro: () => validateLimit(input.spendLimitMicro ?? null) }),
      ...('expiresAt' in input && { expiresAt: () => validateExpiry(input.expiresAt ?? null, this.deps.clock.now()) }),
    });
  }

  async create(input: CreateKeyInput, actor: Actor): Promise<{ key: ApiKey; secret: string }> {
    throwIfFieldErrors(this.inputErrors({ name: input.name, spendLimitMicro: input.spendLimitMicro ?? null, expiresAt: input.expiresAt ?? null }));
    const name = validateName(input.name, 'A key name', KEY_NAME_MAX);
    const limit = validateLimit(input.spendLimitMicro ?? null);
    const expiresAt = validateExpiry(input.expiresAt, this.deps.clock.now());
    const controls = await controlColumns(input, this.deps.resolveModel);
    return withTransaction(this.deps.db, async (tx) => {
      if (input.teamId) {
        // Locked: a removal or demotion to viewer running now either finishes first (and we refuse) or waits for
        // this key to commit (and then revokes it).
        const role = await lockedTeamRoleOf(tx, input.teamId, actor.userId);
        if (!role) throw notFound('Team');
        if (!teamPermissions.createKeys(role)) throw forbidden('Viewers cannot create team keys.');
      }
      const ctx = { now: this.deps.clock.now(), timeZone: this.deps.timeZone };
      await enforceKeyPolicy(tx, { name, spendLimitMicro: limit, expiresAt, ownerId: actor.userId, teamId: input.teamId ?? null }, ctx);
      if (input.autoRotate) await requireSecretReceiver(tx, { userId: actor.userId, teamId: input.teamId ?? null });
      const created = await this.insertKey(tx, {
        name, limit, expiresAt, teamId: input.teamId ?? null, ownerId: actor.userId, tags: controls.tags ?? [],
        controls: { ...controls.columns, ...(input.autoRotate && { auto_rotate: true }) },
      });
      await this.deps.audit.record(tx, actor, 'key.create', { type: 'key', id: created.key.id }, {
        name, teamId: input.teamId ?? null, spendLimitMicro: limit, expiresAt: expiresAt?.toISOString() ?? null, ...auditedControls(controls),
        ...(input.autoRotate && { autoRotate: true }),
      });
      return created;
    });
  }

  async list(filter: ListKeysFilter, actor: Actor, q: Queryable = this.deps.db): Promise<ApiKey[]> {
    const visible = await visibleKeysQuery(q, filter, actor);
    if (!visible) return [];
    const rows = await visible.query.select('api_keys.*').orderBy('api_keys.created_at', 'desc').orderBy('api_keys.id');
    const now = this.deps.clock.now();
    const tags = await tagsOf(q, rows.map((r: Record<string, unknown>) => r.id as string));
    const keys: ApiKey[] = await withRotateBy(q, rows.map((r: Record<string, unknown>) => keyFromRow(r, now, this.deps.timeZone, tags.get(r.id as string))));
    return filter.status ? keys.filter((k) => k.status === filter.status) : keys;
  }

  /** Keys by id for the jobs, which act for the installation (no visibility rule), with their rotate-by dates. */
  async forJobs(ids: string[], q: Queryable = this.deps.db): Promise<ApiKey[]> {
    if (!ids.length) return [];
    const rows = (await q('api_keys').whereIn('id', ids).orderBy('id')) as Array<Record<string, unknown>>;
    const now = this.deps.clock.now();
    return withRotateBy(q, rows.map((r) => keyFromRow(r, now, this.deps.timeZone)));
  }

  async get(id: string, actor: Actor, q: Queryable = this.deps.db): Promise<ApiKey> {
    return this.loadFor(q, id, actor, 'view');
  }

  async update(id: string, changes: KeyControlsInput & { name?: string; spendLimitMicro?: Micro | null; autoRotate?: boolean }, actor: Actor): Promise<ApiKey> {
    const name = changes.name === undefined ? undefined : validateName(changes.name, 'A key name', KEY_NAME_MAX);
    const limit = changes.spendLimitMicro === undefined ? undefined : validateLimit(changes.spendLimitMicro);
    const controls = await controlColumns(changes, this.deps.resolveModel);
    return withTransaction(this.deps.db, async (tx) => {
      // Lock the key so a concurrent settlement cannot slip between reading spend and writing the status.
      const key = await this.loadFor(tx, id, actor, 'manage', true);
      if (key.status === 'revoked') throw conflict('This key is revoked; revoked keys cannot be changed.');
      // A change is judged on what it changes: removing a required limit or taking a name in use is refused, while a
      // key made before a rule keeps working and can still be edited otherwise (it is listed, not broken).
      const changed = [...(name !== undefined ? ['name' as const] : []), ...(limit !== undefined ? ['spendLimitMicro' as const] : [])];
      if (changed.length)
        await enforceKeyPolicy(tx, { ...key, name: name ?? key.name, spendLimitMicro: limit === undefined ? key.spendLimitMicro : limit }, { now: this.deps.clock.now(), timeZone: this.deps.timeZone }, changed);
      const patch: Record<string, unknown> = { updated_at: this.deps.clock.now() };
      if (name !== undefined) patch.name = name;
      if (changes.autoRotate !== undefined) {
        if (changes.autoRotate) await requireSecretReceiver(tx, { userId: key.ownerId, teamId: key.teamId });
        patch.auto_rotate = changes.autoRotate;
      }
      Object.assign(patch, controls.columns);
      if (limit !== undefined || controls.columns.limit_reset !== undefined) {
        if (key.status === 'expired') throw conflict('This key has expired; its limit can no longer be changed.');
        const newLimit = limit === undefined ? key.spendLimitMicro : limit;
        if (limit !== undefined) patch.spend_limit_micro = limit;
        // A key that gains a period starts it now (its spend so far belongs to no period); one that loses it is
        // judged on lifetime spend again.
        const reset = controls.columns.limit_reset === undefined ? key.limitReset : (controls.columns.limit_reset as string | null);
        if (controls.columns.limit_reset !== undefined && reset !== key.limitReset) Object.assign(patch, { period_spend_micro: 0, period_start: null, alert_fired_pct: 0 });
        const counted = !reset ? key.spendMicro : reset === key.limitReset ? key.periodSpendMicro : 0;
        patch.status = statusForLimit(key.status, counted, newLimit);
      }
      await tx('api_keys').where({ id }).update(patch);
      if (controls.tags) await replaceTags(tx, id, controls.tags);
      await this.deps.audit.record(tx, actor, 'key.update', { type: 'key', id }, {
        ...(name !== undefined && { name }),
        ...(changes.autoRotate !== undefined && { autoRotate: changes.autoRotate }),
        ...(limit !== undefined && { spendLimitMicro: limit, from: key.spendLimitMicro, status: patch.status }),
        ...auditedControls(controls),
      });
      return this.reload(tx, id);
    });
  }

  /**
   * Pauses a key: every instance refuses it with 401 key_disabled from the very next request (admission reads the
   * status under the key's row lock; streams in flight are cut at their next growth). Reversible with enable, unlike
   * revocation. Needs the right to manage the key, or to revoke it (installation admins).
   */
  async disable(id: string, actor: Actor): Promise<ApiKey> {
    return this.setPaused(id, actor, true);
  }

  /** Resumes a paused key: `active`, or `limit_reached` when its limit is used up meanwhile. */
  async enable(id: string, actor: Actor): Promise<ApiKey> {
    return this.setPaused(id, actor, false);
  }

  private async setPaused(id: string, actor: Actor, paused: boolean): Promise<ApiKey> {
    return withTransaction(this.deps.db, async (tx) => {
      // Installation admins may pause any key, as they may revoke any (incident response): a pause is the milder step.
      const key = await this.loadFor(tx, id, actor, 'revoke', true);
      if (key.status === 'revoked' || key.status === 'expired') throw conflict(`This key is ${key.status}; it can no longer be paused or resumed.`);
      if ((key.status === 'disabled') === paused) return key;
      const now = this.deps.clock.now();
      const status = paused ? 'disabled' : statusForLimit('active', key.periodSpendMicro, key.spendLimitMicro);
      await tx('api_keys').where({ id }).update({ status, disabled_at: paused ? now : null, updated_at: now });
      await this.deps.audit.record(tx, actor, paused ? 'key.disable' : 'key.enable', { type: 'key', id }, { status });
      return this.reload(tx, id);
    });
  }

  async revoke(id: string, actor: Actor): Promise<ApiKey> {
    return withTransaction(this.deps.db, async (tx) => {
      const key = await this.loadFor(tx, id, actor, 'revoke', true);
      if (key.revokedAt) return key;
      await this.markRevoked(tx, id);
      await this.deps.audit.record(tx, actor, 'key.revoke', { type: 'key', id }, {
        ...(isInstallationAdmin(actor) && key.ownerId !== actor.userId && { asInstallationAdmin: true }),
      });
      await recordKeyEvent(tx, 'key.revoked', id, this.deps.clock.now(), { reason: 'revoked' });
      return this.reload(tx, id);
    });
  }

  /**
   * Creates a successor with the same name, team, limit and expiry; the old key keeps working for the grace
   * period (so a deploy can switch over) and then retires. Grace 0 revokes the old key at once.
   * Not subject to the guard-rails on new keys: rotation replaces a key (above all a leaked one) and must never be
   * refused; a successor that breaks a rule is listed with the other violating keys, for its people to fix.
   */
  async rotate(id: string, gracePeriodSeconds: number, actor: Actor): Promise<{ key: ApiKey; secret: string; previous: ApiKey }> {
    if (!Number.isInteger(gracePeriodSeconds) || gracePeriodSeconds < 0 || gracePeriodSeconds > MAX_GRACE_SECONDS)
      throw badInput(`The grace period is 0 to ${MAX_GRACE_SECONDS} seconds.`);
    return withTransaction(this.deps.db, async (tx) => {
      const old = await this.loadFor(tx, id, actor, 'manage', true);
      return this.rotateLocked(tx, old, gracePeriodSeconds, actor);
    });
  }

  /**
   * Commits a scheduled rotation whose secret the rotate-keys job has just delivered: only while the job's claim on
   * the key is still its own and the key is still unrotated and working, so a run whose claim ran out (another run
   * took over) commits nothing and two runs never make two successors. Runs in the caller's transaction.
   */
  async commitScheduledRotation(
    tx: Queryable, id: string, claimedBy: string, gracePeriodSeconds: number, successor: { id: string; secret: string },
  ): Promise<boolean> {
    const row = await tx('api_keys').where({ id }).forUpdate().first();
    if (!row || row.auto_rotate_claimed_by !== claimedBy || row.rotated_to_id) return false;
    const old = await this.fromRow(tx, row);
    if (!old.autoRotate || (old.status !== 'active' && old.status !== 'limit_reached')) return false;
    await this.rotateLocked(tx, old, gracePeriodSeconds, systemActor, successor);
    return true;
  }

  /**
   * The rotation itself, in the caller's transaction with the old key's row locked: KeysService.rotate for people,
   * the rotate-keys job for scheduled rotation, which brings the secret (and id) it has already delivered.
   */
  async rotateLocked(
    tx: Queryable, old: ApiKey, gracePeriodSeconds: number, actor: Actor, successor?: { id: string; secret: string },
  ): Promise<{ key: ApiKey; secret: string; previous: ApiKey }> {
    const id = old.id;
    if (old.status === 'revoked') throw conflict('This key is revoked; create a new key instead.');
    if (old.status === 'expired') throw conflict('This key has expired; create a new key instead.');
    if (old.rotatedToId) throw conflict('This key was already rotated; rotate its successor instead.');
    const now = this.deps.clock.now();
    const created = await this.insertKey(tx, {
      name: old.name, limit: old.spendLimitMicro, expiresAt: old.expiresAt, teamId: old.teamId, ownerId: old.ownerId, tags: old.tags,
      controls: {
        limit_reset: old.limitReset, allowed_models: old.allowedModels && JSON.stringify(old.allowedModels), rpm_limit: old.rpmLimit,
        tpm_limit: old.tpmLimit, max_parallel: old.maxParallel, auto_rotate: old.autoRotate,
      },
    }, successor);
    if (gracePeriodSeconds === 0) await this.markRevoked(tx, id);
    await tx('api_keys').where({ id }).update({
      rotated_to_id: created.key.id,
      retire_at: new Date(now.getTime() + gracePeriodSeconds * 1000),
      auto_rotate_claimed_by: null,
      auto_rotate_claimed_until: null,
      auto_rotate_failures: 0,
      updated_at: now,
    });
    await this.deps.audit.record(tx, actor, 'key.rotate', { type: 'key', id }, {
      successorId: created.key.id, gracePeriodSeconds, ...(successor && { scheduled: true }),
    });
    // The successor's id only: its secret is in this response (or the scheduled rotation's one delivery) and nowhere else.
    await recordKeyEvent(tx, 'key.rotated', id, now, {
      successorId: created.key.id, gracePeriodSeconds, retireAt: new Date(now.getTime() + gracePeriodSeconds * 1000).toISOString(),
      ...(successor && { scheduled: true }),
    });
    return { ...created, previous: await this.reload(tx, id) };
  }

  private async insertKey(
    tx: Queryable,
    k: { name: string; limit: Micro | null; expiresAt: Date | null; teamId: string | null; ownerId: string; controls: Record<string, unknown>; tags: string[] },
    given?: { id: string; secret: string },
  ): Promise<{ key: ApiKey; secret: string }> {
    const secret = given?.secret ?? generateSecret('mbk_');
    const id = given?.id ?? newId();
    const now = this.deps.clock.now();
    await tx('api_keys').insert({
      id, name: k.name, key_hash: hashSecret(secret), last4: lastFour(secret), owner_id: k.ownerId, team_id: k.teamId,
      status: statusForLimit('active', 0, k.limit), spend_limit_micro: k.limit, spend_micro: 0, held_micro: 0,
      request_count: 0, expires_at: k.expiresAt, created_at: now, updated_at: now, ...k.controls,
    });
    await replaceTags(tx, id, k.tags);
    return { key: await this.reload(tx, id), secret };
  }

  private async markRevoked(tx: Queryable, id: string): Promise<void> {
    await markKeyRevoked(tx, id, this.deps.clock.now());
  }

  private async reload(q: Queryable, id: string): Promise<ApiKey> {
    return this.fromRow(q, (await q('api_keys').where({ id }).first())!);
  }

  private async fromRow(q: Queryable, row: Record<string, unknown>): Promise<ApiKey> {
    const tags = await tagsOf(q, [row.id as string]);
    const [key] = await withRotateBy(q, [keyFromRow(row, this.deps.clock.now(), this.deps.timeZone, tags.get(row.id as string))]);
    return key!;
  }

  /**
   * Loads a key if the actor may access it; otherwise "not found", so ids of other people's keys reveal nothing.
   * Personal keys: their owner. Team keys: per the role table. Installation admins may view and revoke any key.
   * With `lock` (before a write) the caller's team membership and then the key are locked for the transaction.
   */
  private async loadFor(q: Queryable, id: string, actor: Actor, access: Access, lock = false): Promise<ApiKey> {
    let row = await q('api_keys').where({ id }).first();
    if (!row) throw notFound('Key');
    const teamId = row.team_id as string | null;
    const roleOf = lock ? lockedTeamRoleOf : teamRoleOf;
    const role: TeamRole | null = teamId ? await roleOf(q, teamId, actor.userId) : null;
    if (lock) {
      // Membership (above) before the key row: the order removeMember takes them in.
      row = await q('api_keys').where({ id }).forUpdate().first();
      if (!row) throw notFound('Key');
    }
    const key = await this.fromRow(q, row);
    if (allowed(key, role, actor)) return key;
    if (isInstallationAdmin(actor) && access !== 'manage') return key;
    throw notFound('Key');
  }
}

/**
 * Revokes a key for good. The status is all it takes: admission re-reads it under the key's row lock and /v1 lookups
 * read it uncached, so every instance refuses the key from its very next request.
 */
export async function markKeyRevoked(tx: Queryable, id: string, now: Date): Promise<void> {
  await tx('api_keys').where({ id }).update({ status: 'revoked', revoked_at: now, updated_at: now });
}

/**
 * The keys an actor may see, as a query on `api_keys` (SPEC §4 visibility): personal keys — their owner; team keys —
 * owners and admins all, members their own, viewers none; `all` — installation admins, everything. Null when the
 * filter can show nothing. The key list and the usage log both build on this, so the rule exists once.
 * (Wrapped in an object: a knex builder is thenable, so returning it bare from an async function would run it.)
 */
export async function visibleKeysQuery(
  q: Queryable,
  filter: Pick<ListKeysFilter, 'teamId' | 'all'>,
  actor: Actor,
): Promise<{ query: Knex.QueryBuilder } | null> {
  const keys = q('api_keys');
  if (filter.all) {
    if (!isInstallationAdmin(actor)) throw forbidden();
    return { query: filter.teamId ? keys.where('api_keys.team_id', filter.teamId) : keys };
  }
  if (filter.teamId) {
    const role = await teamRoleOf(q, filter.teamId, actor.userId);
    if (!role) throw notFound('Team');
    const teamKeys = keys.where('api_keys.team_id', filter.teamId);
    if (teamPermissions.manageAllKeys(role)) return { query: teamKeys };
    return teamPermissions.manageOwnKeys(role) ? { query: teamKeys.where('api_keys.owner_id', actor.userId) } : null;
  }
  // Personal keys, plus the team keys the caller's role lets them see.
  const query = keys
    .leftJoin('team_members as tm', function () {
      this.on('tm.team_id', '=', 'api_keys.team_id').andOn('tm.user_id', '=', q.raw('?', [actor.userId]));
    })
    .where((w) =>
      w
        .where((p) => p.whereNull('api_keys.team_id').andWhere('api_keys.owner_id', actor.userId))
        .orWhereIn('tm.role', ['owner', 'admin'])
        .orWhere((m) => m.where('tm.role', 'member').andWhere('api_keys.owner_id', actor.userId)),
    );
  return { query };
}

/** Whether the actor, whose role in the key's team is `role`, may see and manage the key (SPEC §4 visibility). */
function allowed(key: ApiKey, role: TeamRole | null, actor: Actor): boolean {
  if (!key.teamId) return key.ownerId === actor.userId;
  if (!role) return false;
  return teamPermissions.manageAllKeys(role) || (teamPermissions.manageOwnKeys(role) && key.ownerId === actor.userId);
}

/**
 * Scheduled rotation delivers the new secret only by signed webhook, so it needs an endpoint of the key's owner (the
 * team's for a team key) subscribed to key.rotated_secret; without one nobody would ever learn the successor's secret.
 */
async function requireSecretReceiver(q: Queryable, scope: { userId: string; teamId: string | null }): Promise<void> {
  if ((await subscribedEndpoints(q, scope, SECRET_EVENT_TYPE)).length) return;
  const where = scope.teamId ? 'a team webhook' : 'a webhook of your own';
  const message = `Scheduled rotation sends the new key to ${where} subscribed to ${SECRET_EVENT_TYPE}: add one on the Webhooks page first.`;
  throw badInput(message, { autoRotate: message });
}

/** The keys with their rotate-by dates under the policy in force. */
export async function withRotateBy(q: Queryable, keys: ApiKey[]): Promise<ApiKey[]> {
  const dates = await rotateByForKeys(q, keys);
  return keys.map((k) => ({ ...k, rotateBy: dates.get(k.id) ?? null }));
}

function auditedControls(c: { columns: Record<string, unknown>; tags?: string[] }): Record<string, unknown> {
  return { ...(Object.keys(c.columns).length && { controls: c.columns }), ...(c.tags && { tags: c.tags }) };
}

function validateLimit(limit: Micro | null): Micro | null {
  if (limit === null) return null;
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_AMOUNT_MICRO) throw badInput('A spending limit is a non-negative AUD amount.');
  return limit;
}
