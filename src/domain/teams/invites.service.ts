import { randomBytes } from 'node:crypto';
import type { Db, Queryable, Tx } from '../../db/knex.js';
import { toDate } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { hashSecret } from '../../auth/secret-format.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import { isValidEmail, normalizeEmail, type NewUser, type User, type UsersService } from '../accounts/users.service.js';
import type { Clock } from '../clock.js';
import { badInput, conflict, DomainError, forbidden, isDuplicateKeyError, notFound } from '../errors.js';
import { newId } from '../ids.js';
import { memberRowId } from '../keys/controls.js';
import { lockTeamMembers, requireMemberManager, teamRoleOf } from './membership.js';
import { teamPermissions, type TeamRole } from './roles.js';

/** How long an invite link works. */
export const INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** 32 random bytes, base64url: 43 characters. Checked before any lookup, so junk never reaches the database. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface TeamInvite {
  id: string;
  teamId: string;
  email: string;
  role: TeamRole;
  createdBy: string | null;
  expiresAt: Date;
  createdAt: Date;
}

export type InviteState = 'pending' | 'accepted' | 'expired' | 'revoked';

/** What the invite page shows about a link: the team, the address and whether that address has an account yet. */
export interface InviteLookup extends TeamInvite {
  state: InviteState;
  teamName: string;
  inviterName: string | null;
  emailHasAccount: boolean;
}

/** Why an invite link cannot be used: a clear page (410 Gone), never an error page. */
export class InviteUnusableError extends DomainError {
  constructor(readonly state: Exclude<InviteState, 'pending'> | 'unknown') {
    super('NOT_FOUND', INVITE_UNUSABLE[state]);
    this.name = 'InviteUnusableError';
  }
}

const INVITE_UNUSABLE: Record<Exclude<InviteState, 'pending'> | 'unknown', string> = {
  unknown: 'This invitation link is not valid. Check that you copied all of it, or ask for a new one.',
  accepted: 'This invitation has already been used. Each link works once; ask the team owner for a new one if you need it.',
  expired: 'This invitation has expired. Ask the team owner for a new one.',
  revoked: 'This invitation was withdrawn by the team. Ask the team owner if you think that is a mistake.',
};

export interface InvitesDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  users: UsersService;
}

/**
 * Team invitations by e-mail (issue #15): an owner or admin invites an address in a role; the secret link is shown
 * once to the inviter (only its SHA-256 is stored, like API keys), works for INVITE_TTL_MS, once. Whoever holds the
 * link and signs in as (or creates an account for) the invited address becomes a member.
 *
 * Creating an account from an invite works even with open sign-up off: the team owner vouches for that one address,
 * much as an installation admin creating the user would. The account gets the default plan and the user role.
 */
export class InvitesService {
  constructor(private readonly deps: InvitesDeps) {}

  async create(teamId: string, rawEmail: string, role: TeamRole, actor: Actor): Promise<{ invite: TeamInvite; token: string }> {
    const email = normalizeEmail(rawEmail);
    if (!isValidEmail(email)) throw badInput('Enter a valid e-mail address.');
    const token = randomBytes(32).toString('base64url');
    const now = this.deps.clock.now();
    const invite: TeamInvite = { id: newId(), teamId, email, role, createdBy: actor.userId, expiresAt: new Date(now.getTime() + INVITE_TTL_MS), createdAt: now };
    await withTransaction(this.deps.db, async (tx) => {
      const members = await lockTeamMembers(tx, teamId);
      requireMemberManager(members, actor, role);
      const existing = await tx('users').where({ email }).first('id');
      if (existing && members.has(existing.id as string)) throw conflict('That person is already a member of this team.');
      // A new invite for the same address replaces the earlier ones: one live link per person and team.
      await tx('team_invites').where({ team_id: teamId, email }).whereNull('accepted_at').whereNull('revoked_at').update({ revoked_at: now });
      await tx('team_invites').insert({
        id: invite.id, token_hash: hashSecret(token), team_id: teamId, email, role, created_by: actor.userId,
        expires_at: invite.expiresAt, accepted_at: null, accepted_by: null, revoked_at: null, created_at: now,
      });
      await this.deps.audit.record(tx, actor, 'team.invite_create', { type: 'team', id: teamId }, {
        inviteId: invite.id, email, role, expiresAt: invite.expiresAt.toISOString(),
      });
    });
    return { invite, token };
  }

  /** Unused, unexpired, unrevoked invites of a team, for its owners and admins. */
  async listPending(teamId: string, actor: Actor, q: Queryable = this.deps.db): Promise<TeamInvite[]> {
    const role = await teamRoleOf(q, teamId, actor.userId);
    if (!role) throw notFound('Team');
    if (!teamPermissions.manageMembers(role)) throw forbidden('Only team owners and admins see invitations.');
    const rows = await q('team_invites')
      .where({ team_id: teamId }).whereNull('accepted_at').whereNull('revoked_at').where('expires_at', '>', this.deps.clock.now())
      .orderBy('created_at', 'desc');
    return rows.map(inviteFromRow);
  }

  async revoke(teamId: string, inviteId: string, actor: Actor): Promise<void> {
    await withTransaction(this.deps.db, async (tx) => {
      const members = await lockTeamMembers(tx, teamId);
      const row = await tx('team_invites').where({ id: inviteId, team_id: teamId }).first();
      if (!members.has(actor.userId)) throw notFound('Team');
      if (!row) throw notFound('Invitation');
      // Withdrawing an invite is managing the member it would make: admins cannot withdraw an owner invite.
      requireMemberManager(members, actor, row.role as TeamRole);
      const revoked = await tx('team_invites').where({ id: inviteId }).whereNull('accepted_at').whereNull('revoked_at').update({ revoked_at: this.deps.clock.now() });
      if (!revoked) throw conflict('That invitation was already used or withdrawn.');
      await this.deps.audit.record(tx, actor, 'team.invite_revoke', { type: 'team', id: teamId }, { inviteId, email: row.email });
    });
  }

  /** What a link is, for the invite page; null when no invite has this token. */
  async lookup(token: string): Promise<InviteLookup | null> {
    if (!TOKEN_PATTERN.test(token)) return null;
    const row = await this.deps.db('team_invites as i')
      .join('teams as t', 't.id', 'i.team_id')
      .leftJoin('users as c', 'c.id', 'i.created_by')
      .where('i.token_hash', hashSecret(token))
      .first('i.*', 't.name as team_name', 'c.name as inviter_name');
    if (!row) return null;
    const account = await this.deps.users.findByEmail(row.email as string);
    return {
      ...inviteFromRow(row),
      state: stateOf(row, this.deps.clock.now()),
      teamName: row.team_name as string,
      inviterName: (row.inviter_name as string | null) ?? null,
      emailHasAccount: account !== null,
    };
  }

  /** A signed-in user accepts: they must be signed in as the invited address. */
  async accept(token: string, actor: Actor): Promise<{ teamId: string; role: TeamRole }> {
    const user = await this.deps.users.get(actor.userId);
    if (!user) throw notFound('User');
    return withTransaction(this.deps.db, (tx) => this.acceptIn(tx, token, user, actor));
  }

  /**
   * A visitor without an account creates one for the invited address and joins, in one transaction: if the link
   * turns out used or revoked meanwhile, no account is left behind.
   */
  async acceptAsNewUser(token: string, input: Omit<NewUser, 'email' | 'role' | 'planName'>, meta: Pick<Actor, 'ip' | 'userAgent'> = {}): Promise<User> {
    const found = await this.lookup(token);
    if (!found) throw new InviteUnusableError('unknown');
    if (found.state !== 'pending') throw new InviteUnusableError(found.state);
    if (found.emailHasAccount) throw conflict(`An account for ${found.email} already exists: sign in to accept the invitation.`);
    return this.deps.users.create({ ...input, email: found.email }, null, async (tx, user) => {
      await this.acceptIn(tx, token, user, { userId: user.id, role: user.role, via: 'session', ...meta });
    });
  }

  private async acceptIn(tx: Tx, token: string, user: User, actor: Actor): Promise<{ teamId: string; role: TeamRole }> {
    if (!TOKEN_PATTERN.test(token)) throw new InviteUnusableError('unknown');
    const row = await tx('team_invites').where({ token_hash: hashSecret(token) }).first();
    if (!row) throw new InviteUnusableError('unknown');
    const now = this.deps.clock.now();
    const state = stateOf(row, now);
    if (state !== 'pending') throw new InviteUnusableError(state);
    if (normalizeEmail(user.email) !== row.email)
      throw forbidden(`This invitation is for ${row.email as string}, and you are signed in as ${user.email}. Sign out and sign in (or create an account) with the invited address.`);
    const teamId = row.team_id as string;
    const role = row.role as TeamRole;
    // Membership rows first, as every membership change does (membership.ts); then the invite is spent by a
    // conditional update, so of two accepts racing on one link exactly one finds it unspent.
    const members = await lockTeamMembers(tx, teamId);
    const spent = await tx('team_invites')
      .where({ id: row.id }).whereNull('accepted_at').whereNull('revoked_at').where('expires_at', '>', now)
      .update({ accepted_at: now, accepted_by: user.id });
    if (!spent) throw new InviteUnusableError('accepted');
    if (members.has(user.id)) throw conflict('You are already a member of this team.');
    try {
      await tx('team_members').insert({ id: memberRowId(teamId, user.id), team_id: teamId, user_id: user.id, role, created_at: now });
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict('You are already a member of this team.');
      throw err;
    }
    await this.deps.audit.record(tx, actor, 'team.invite_accept', { type: 'team', id: teamId }, { inviteId: row.id, userId: user.id, role });
    return { teamId, role };
  }
}

function stateOf(row: Record<string, unknown>, now: Date): InviteState {
  if (row.accepted_at) return 'accepted';
  if (row.revoked_at) return 'revoked';
  return toDate(row.expires_at).getTime() <= now.getTime() ? 'expired' : 'pending';
}

function inviteFromRow(r: Record<string, unknown>): TeamInvite {
  return {
    id: r.id as string,
    teamId: r.team_id as string,
    email: r.email as string,
    role: r.role as TeamRole,
    createdBy: (r.created_by as string | null) ?? null,
    expiresAt: toDate(r.expires_at),
    createdAt: toDate(r.created_at),
  };
}
