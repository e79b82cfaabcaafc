import type { Db, Queryable, Tx } from '../../db/knex.js';
import { toBool, toDate } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../../auth/passwords.js';
import { hashSecret } from '../../auth/secret-format.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import { billingPeriodAt } from '../billing/period.js';
import type { Clock } from '../clock.js';
import { badInput, conflict, forbidden, isDuplicateKeyError, notFound } from '../errors.js';
import { newId, randomBase62 } from '../ids.js';
import { validateName } from '../names.js';
import { defaultPlan, findPlan, type Plan } from './plans.js';

export interface User {
  id: string;
  email: string;
  name: string;
  role: 'admin' | 'user';
  disabled: boolean;
  planId: string;
  timeZone: string | null;
  createdAt: Date;
}

export interface NewUser {
  email: string;
  password: string;
  name?: string;
  role?: 'admin' | 'user';
  planName?: string;
}

export const USER_NAME_MAX = 100;
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 200;
/** How long an administrator's password reset link works. */
export const RESET_LINK_TTL_MS = 24 * 60 * 60 * 1000;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function checkPasswordLength(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX)
    throw badInput(`Passwords are ${PASSWORD_MIN} to ${PASSWORD_MAX} characters long.`);
}

/** For an already normalised address. */
export function isValidEmail(email: string): boolean {
  return EMAIL_PATTERN.test(email) && email.length <= 254;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function userFromRow(r: Record<string, unknown>): User {
  return {
    id: r.id as string,
    email: r.email as string,
    name: r.name as string,
    role: r.role === 'admin' ? 'admin' : 'user',
    disabled: toBool(r.disabled),
    planId: r.plan_id as string,
    timeZone: (r.time_zone as string | null) ?? null,
    createdAt: toDate(r.created_at),
  };
}

export interface UsersDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  timeZone: string;
  /** Called when a user is disabled, so their sessions end at once. */
  onDisabled?: (userId: string) => Promise<void>;
}

export class UsersService {
  constructor(private readonly deps: UsersDeps) {}

  /**
   * `andThen` runs in the transaction that inserts the user, so a follow-up that must not happen without the account
   * (accepting a team invite) and the account commit together or not at all.
   */
  async create(input: NewUser, actor: Actor | null, andThen?: (tx: Tx, user: User) => Promise<void>): Promise<User> {
    const email = normalizeEmail(input.email);
    if (!isValidEmail(email)) throw badInput('Enter a valid e-mail address.');
    checkPasswordLength(input.password);
    const name = input.name !== undefined ? validateName(input.name, 'A name', USER_NAME_MAX) : (email.split('@')[0] ?? email).slice(0, USER_NAME_MAX) || email;
    const { db, clock, audit, timeZone } = this.deps;
    const passwordHash = await hashPassword(input.password);
    const now = clock.now();
    try {
      return await withTransaction(db, async (tx) => {
        const plan = input.planName ? await findPlan(tx, { name: input.planName }) : await defaultPlan(tx);
        if (!plan) throw badInput(`No plan named "${input.planName}".`);
        const id = newId();
        await tx('users').insert({
          id, email, name, password_hash: passwordHash, role: input.role ?? 'user', disabled: false,
          plan_id: plan.id, created_at: now, updated_at: now,
        });
        await tx('personal_balances').insert({
          user_id: id, included_used_micro: 0, prepaid_micro: 0, overage_used_micro: 0, held_micro: 0,
          period_start: billingPeriodAt(now, timeZone).start, updated_at: now,
        });
        await audit.record(tx, actor ?? { userId: id, role: 'user', via: 'session' }, 'user.create', { type: 'user', id }, {
          email, role: input.role ?? 'user', plan: plan.name,
        });
        const user = userFromRow((await tx('users').where({ id }).first())!);
        await andThen?.(tx, user);
        return user;
      });
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict('A user with that e-mail address already exists.');
      throw err;
    }
  }

  async count(q: Queryable = this.deps.db): Promise<number> {
    const row = await q('users').count({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }

  async get(id: string, q: Queryable = this.deps.db): Promise<User | null> {
    const row = await q('users').where({ id }).first();
    return row ? userFromRow(row) : null;
  }

  async findByEmail(email: string, q: Queryable = this.deps.db): Promise<User | null> {
    const row = await q('users').where({ email: normalizeEmail(email) }).first();
    return row ? userFromRow(row) : null;
  }

  async list(q: Queryable = this.deps.db): Promise<User[]> {
    return (await q('users').orderBy('email')).map(userFromRow);
  }

  /**
   * Checks an e-mail and password. Unknown users, wrong passwords and disabled users all give null after the same
   * argon2 work, so the answer reveals nothing about which accounts exist.
   */
  async verifyCredentials(email: string, password: string): Promise<User | null> {
    const row = await this.deps.db('users').where({ email: normalizeEmail(email) }).first();
    const hash = (row?.password_hash as string | undefined) ?? (await dummyPasswordHash());
    const ok = await verifyPassword(hash, password.slice(0, PASSWORD_MAX));
    if (!row || !ok) return null;
    const user = userFromRow(row);
    return user.disabled ? null : user;
  }

  async setDisabled(userId: string, disabled: boolean, actor: Actor): Promise<User> {
    if (actor.role !== 'admin') throw forbidden();
    if (userId === actor.userId && disabled) throw badInput('You cannot disable your own account.');
    const user = await withTransaction(this.deps.db, async (tx) => {
      const updated = await tx('users').where({ id: userId }).update({ disabled, updated_at: this.deps.clock.now() });
      if (!updated) throw notFound('User');
      await this.deps.audit.record(tx, actor, disabled ? 'user.disable' : 'user.enable', { type: 'user', id: userId });
      return userFromRow((await tx('users').where({ id: userId }).first())!);
    });
    if (disabled) await this.deps.onDisabled?.(userId);
    return user;
  }

  async setPlan(userId: string, planId: string, actor: Actor): Promise<User> {
    if (actor.role !== 'admin') throw forbidden();
    return withTransaction(this.deps.db, async (tx) => {
      const plan: Plan | null = await findPlan(tx, { id: planId });
      if (!plan) throw notFound('Plan');
      const before = await tx('users').where({ id: userId }).first();
      if (!before) throw notFound('User');
      await tx('users').where({ id: userId }).update({ plan_id: plan.id, updated_at: this.deps.clock.now() });
      await this.deps.audit.record(tx, actor, 'user.set_plan', { type: 'user', id: userId }, { from: before.plan_id, to: plan.id });
      return userFromRow((await tx('users').where({ id: userId }).first())!);
    });
  }

  /**
   * A signed-in user changes their own password: the current one is required, and every other session of the
   * user ends (the one the change was made from, `keepSessionId`, stays signed in).
   */
  async changePassword(actor: Actor, current: string, next: string, keepSessionId: string | null): Promise<void> {
    checkPasswordLength(next);
    const row = await this.deps.db('users').where({ id: actor.userId }).first();
    if (!row) throw notFound('User');
    if (!(await verifyPassword(row.password_hash as string, current.slice(0, PASSWORD_MAX))))
      throw badInput('Your current password is not right.');
    const hash = await hashPassword(next);
    await withTransaction(this.deps.db, async (tx) => {
      await tx('users').where({ id: actor.userId }).update({ password_hash: hash, updated_at: this.deps.clock.now() });
      let others = tx('sessions').where({ user_id: actor.userId });
      if (keepSessionId) others = others.whereNot({ id: hashSecret(keepSessionId) });
      await others.delete();
      await this.deps.audit.record(tx, actor, 'user.password_change', { type: 'user', id: actor.userId });
    });
  }

  /**
   * An administrator issues a one-time reset link for a user. The secret is returned once (it goes in the link)
   * and stored only as SHA-256; it expires after RESET_LINK_TTL_MS, and issuing a new one voids earlier ones.
   */
  async issuePasswordReset(userId: string, actor: Actor): Promise<{ token: string; expiresAt: Date }> {
    if (actor.role !== 'admin') throw forbidden();
    const token = randomBase62(32);
    const now = this.deps.clock.now();
    const expiresAt = new Date(now.getTime() + RESET_LINK_TTL_MS);
    await withTransaction(this.deps.db, async (tx) => {
      const user = await tx('users').where({ id: userId }).first();
      if (!user) throw notFound('User');
      await tx('password_resets').where({ user_id: userId }).whereNull('used_at').update({ used_at: now });
      await tx('password_resets').insert({
        id: hashSecret(token), user_id: userId, created_by: actor.via === 'system' ? null : actor.userId,
        expires_at: expiresAt, used_at: null, created_at: now,
      });
      await this.deps.audit.record(tx, actor, 'user.password_reset_issue', { type: 'user', id: userId }, { expiresAt: expiresAt.toISOString() });
    });
    return { token, expiresAt };
  }

  /** The user a reset link is for, while it is unused and unexpired; null otherwise. */
  async findPasswordReset(token: string): Promise<User | null> {
    if (!/^[0-9A-Za-z]{32}$/.test(token)) return null;
    const row = await this.deps.db('password_resets as r')
      .join('users as u', 'u.id', 'r.user_id')
      .where('r.id', hashSecret(token)).whereNull('r.used_at').where('r.expires_at', '>', this.deps.clock.now())
      .first('u.*');
    return row ? userFromRow(row) : null;
  }

  /**
   * Sets a new password through a reset link. The link is spent by a conditional update, so two uses racing
   * cannot both succeed; every session of the user ends.
   */
  async resetPassword(token: string, next: string, meta: { ip?: string | null; userAgent?: string | null } = {}): Promise<User> {
    checkPasswordLength(next);
    const invalid = () => badInput('This reset link is not valid: it may have been used already or have expired.');
    if (!/^[0-9A-Za-z]{32}$/.test(token)) throw invalid();
    const hash = await hashPassword(next);
    const now = this.deps.clock.now();
    return withTransaction(this.deps.db, async (tx) => {
      const reset = await tx('password_resets').where({ id: hashSecret(token) }).first();
      if (!reset) throw invalid();
      const spent = await tx('password_resets')
        .where({ id: hashSecret(token) }).whereNull('used_at').where('expires_at', '>', now)
        .update({ used_at: now });
      if (!spent) throw invalid();
      const userId = reset.user_id as string;
      await tx('users').where({ id: userId }).update({ password_hash: hash, updated_at: now });
      await tx('sessions').where({ user_id: userId }).delete();
      const user = userFromRow((await tx('users').where({ id: userId }).first())!);
      await this.deps.audit.record(tx, { userId, role: user.role, via: 'session', ip: meta.ip, userAgent: meta.userAgent },
        'user.password_reset', { type: 'user', id: userId });
      return user;
    });
  }

  /** An operator sets a user's password (the CLI, for an administrator locked out); every session of the user ends. */
  async setPassword(email: string, password: string, actor: Actor): Promise<User> {
    if (actor.role !== 'admin') throw forbidden();
    checkPasswordLength(password);
    const hash = await hashPassword(password);
    return withTransaction(this.deps.db, async (tx) => {
      const row = await tx('users').where({ email: normalizeEmail(email) }).first();
      if (!row) throw notFound('User');
      await tx('users').where({ id: row.id }).update({ password_hash: hash, updated_at: this.deps.clock.now() });
      await tx('sessions').where({ user_id: row.id }).delete();
      await this.deps.audit.record(tx, actor, 'user.password_set', { type: 'user', id: row.id as string });
      return userFromRow((await tx('users').where({ id: row.id }).first())!);
    });
  }
}
