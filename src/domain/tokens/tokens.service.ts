import type { Db, Queryable } from '../../db/knex.js';
import { toDate, toDateOrNull } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { generateSecret, hashSecret, isWellFormedSecret, lastFour } from '../../auth/secret-format.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { forbidden, notFound } from '../errors.js';
import { validateExpiry } from '../expiry.js';
import { newId } from '../ids.js';
import { validateName } from '../names.js';
import { userFromRow, type User } from '../accounts/users.service.js';

export interface ManagementToken {
  id: string;
  name: string;
  last4: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
  status: 'active' | 'revoked' | 'expired';
}

export const TOKEN_NAME_MAX = 100;

export interface TokensDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

/** Management tokens (mbm_…): act as their user on /trpc, for automation such as key rotation. */
export class TokensService {
  constructor(private readonly deps: TokensDeps) {}

  /**
   * A token for the actor, or, for an installation admin acting from the CLI, for `input.ownerId`: the audit row then
   * names the CLI as the actor and the owner in its details, like every other CLI action.
   */
  async create(input: { name: string; expiresAt?: Date | null; ownerId?: string }, actor: Actor): Promise<{ token: ManagementToken; secret: string }> {
    const ownerId = input.ownerId ?? actor.userId;
    if (ownerId !== actor.userId && actor.role !== 'admin') throw forbidden();
    const name = validateName(input.name, 'A token name', TOKEN_NAME_MAX);
    const now = this.deps.clock.now();
    const expiresAt = validateExpiry(input.expiresAt, now);
    const secret = generateSecret('mbm_');
    const id = newId();
    return withTransaction(this.deps.db, async (tx) => {
      await tx('management_tokens').insert({
        id, user_id: ownerId, name, token_hash: hashSecret(secret), last4: lastFour(secret),
        expires_at: expiresAt, created_at: now,
      });
      await this.deps.audit.record(tx, actor, 'token.create', { type: 'token', id }, { name, ...(ownerId !== actor.userId && { ownerId }) });
      return { token: this.fromRow((await tx('management_tokens').where({ id }).first())!), secret };
    });
  }

  async list(actor: Actor, q: Queryable = this.deps.db): Promise<ManagementToken[]> {
    const rows = await q('management_tokens').where({ user_id: actor.userId }).orderBy('created_at', 'desc');
    return rows.map((r: Record<string, unknown>) => this.fromRow(r));
  }

  async revoke(id: string, actor: Actor): Promise<ManagementToken> {
    return withTransaction(this.deps.db, async (tx) => {
      const row = await tx('management_tokens').where({ id, user_id: actor.userId }).first();
      if (!row) throw notFound('Token');
      if (!row.revoked_at) {
        await tx('management_tokens').where({ id }).update({ revoked_at: this.deps.clock.now() });
        await this.deps.audit.record(tx, actor, 'token.revoke', { type: 'token', id });
      }
      return this.fromRow((await tx('management_tokens').where({ id }).first())!);
    });
  }

  /** The user a bearer token acts as, or null. Malformed tokens are refused before any query. */
  async authenticate(secret: string): Promise<User | null> {
    if (!isWellFormedSecret(secret, 'mbm_')) return null;
    const now = this.deps.clock.now();
    const row = await this.deps.db('management_tokens as t')
      .join('users as u', 'u.id', 't.user_id')
      .where('t.token_hash', hashSecret(secret))
      .first('u.*', 't.id as token_id', 't.revoked_at as token_revoked_at', 't.expires_at as token_expires_at', 't.last_used_at as token_last_used_at');
    if (!row || row.token_revoked_at) return null;
    const expiresAt = toDateOrNull(row.token_expires_at);
    if (expiresAt && expiresAt.getTime() <= now.getTime()) return null;
    const user = userFromRow(row);
    if (user.disabled) return null;
    // Last-used is informational; writing it at most once a minute keeps automation bursts cheap.
    const lastUsed = toDateOrNull(row.token_last_used_at);
    if (!lastUsed || now.getTime() - lastUsed.getTime() > 60_000)
      await this.deps.db('management_tokens').where({ id: row.token_id }).update({ last_used_at: now });
    return user;
  }

  private fromRow(r: Record<string, unknown>): ManagementToken {
    const expiresAt = toDateOrNull(r.expires_at);
    const revokedAt = toDateOrNull(r.revoked_at);
    const now = this.deps.clock.now();
    return {
      id: r.id as string,
      name: r.name as string,
      last4: r.last4 as string,
      expiresAt,
      revokedAt,
      lastUsedAt: toDateOrNull(r.last_used_at),
      createdAt: toDate(r.created_at),
      status: revokedAt ? 'revoked' : expiresAt && expiresAt.getTime() <= now.getTime() ? 'expired' : 'active',
    };
  }
}
