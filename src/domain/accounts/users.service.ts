import type { Db, Queryable } from '../../db/knex.js';
import { toBool, toDate } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../../auth/passwords.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import { billingPeriodAt } from '../billing/period.js';
import type { Clock } from '../clock.js';
import { badInput, conflict, forbidden, isDuplicateKeyError, notFound } from '../errors.js';
import { newId } from '../ids.js';
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
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

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

  async create(input: NewUser, actor: Actor | null): Promise<User> {
    const email = normalizeEmail(input.email);
    if (!EMAIL_PATTERN.test(email) || email.length > 254) throw badInput('Enter a valid e-mail address.');
    if (input.password.length < PASSWORD_MIN || input.password.length > PASSWORD_MAX)
      throw badInput(`Passwords are ${PASSWORD_MIN} to ${PASSWORD_MAX} characters long.`);
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
        return userFromRow((await tx('users').where({ id }).first())!);
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
}
