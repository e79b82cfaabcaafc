import type { Db, Queryable } from '../../db/knex.js';
import { withTransaction } from '../../db/transaction.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, conflict, forbidden, isDuplicateKeyError, notFound, UnknownEmailError } from '../errors.js';
import { newId } from '../ids.js';
import { validateName } from '../names.js';
import { toMicro, type Micro } from '../money.js';
import { normalizeEmail } from '../accounts/users.service.js';
import { lockTeamMembers, requireMemberManager, revokeMemberTeamKeys, teamRoleOf } from './membership.js';
import { teamPermissions, type TeamRole } from './roles.js';
import { memberRowId } from '../keys/controls.js';

export interface Team {
  id: string;
  name: string;
  balanceMicro: Micro;
  heldMicro: Micro;
  /** The caller's role; null for installation admins looking at a team they are not in. */
  role: TeamRole | null;
}

export interface TeamMember {
  userId: string;
  email: string;
  name: string;
  role: TeamRole;
}

export const TEAM_NAME_MAX = 100;

export interface TeamsDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
}

export class TeamsService {
  constructor(private readonly deps: TeamsDeps) {}

  async create(rawName: string, actor: Actor): Promise<Team> {
    const name = validateName(rawName, 'A team name', TEAM_NAME_MAX);
    const now = this.deps.clock.now();
    return withTransaction(this.deps.db, async (tx) => {
      const id = newId();
      await tx('teams').insert({ id, name, balance_micro: 0, held_micro: 0, created_by: actor.userId, created_at: now, updated_at: now });
      await tx('team_members').insert({ id: memberRowId(id, actor.userId), team_id: id, user_id: actor.userId, role: 'owner', created_at: now });
      await this.deps.audit.record(tx, actor, 'team.create', { type: 'team', id }, { name });
      return { id, name, balanceMicro: 0, heldMicro: 0, role: 'owner' };
    });
  }

  async list(actor: Actor, q: Queryable = this.deps.db): Promise<Team[]> {
    const rows = await q('teams')
      .join('team_members as tm', 'tm.team_id', 'teams.id')
      .where('tm.user_id', actor.userId)
      .orderBy('teams.name')
      .select('teams.*', 'tm.role');
    return rows.map(teamFromRow);
  }

  /** Every team, for installation admins (top-ups, reconciliation status). */
  async listAll(actor: Actor, q: Queryable = this.deps.db): Promise<Team[]> {
    if (actor.role !== 'admin') throw forbidden();
    const rows = await q('teams').orderBy('name').select('teams.*');
    return rows.map((r: Record<string, unknown>) => teamFromRow({ ...r, role: null }));
  }

  async get(teamId: string, actor: Actor, q: Queryable = this.deps.db): Promise<Team & { members: TeamMember[] }> {
    const role = await teamRoleOf(q, teamId, actor.userId);
    if (!role && actor.role !== 'admin') throw notFound('Team');
    const row = await q('teams').where({ id: teamId }).first();
    if (!row) throw notFound('Team');
    const members = await q('team_members as tm')
      .join('users as u', 'u.id', 'tm.user_id')
      .where('tm.team_id', teamId)
      .orderByRaw("CASE tm.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'member' THEN 2 ELSE 3 END")
      .orderBy('u.email')
      .select('u.id as userId', 'u.email', 'u.name', 'tm.role');
    return { ...teamFromRow({ ...row, role }), members: members as TeamMember[] };
  }

  async addMember(teamId: string, email: string, role: TeamRole, actor: Actor): Promise<TeamMember> {
    return withTransaction(this.deps.db, async (tx) => {
      const members = await lockTeamMembers(tx, teamId);
      requireMemberManager(members, actor, role);
      const user = await tx('users').where({ email: normalizeEmail(email) }).first();
      if (!user) throw new UnknownEmailError(email);
      if (members.has(user.id)) throw conflict('That user is already a member of this team.');
      try {
        await tx('team_members').insert({ id: memberRowId(teamId, user.id), team_id: teamId, user_id: user.id, role, created_at: this.deps.clock.now() });
      } catch (err) {
        if (isDuplicateKeyError(err)) throw conflict('That user is already a member of this team.');
        throw err;
      }
      await this.deps.audit.record(tx, actor, 'team.member_add', { type: 'team', id: teamId }, { userId: user.id, role });
      return { userId: user.id, email: user.email, name: user.name, role };
    });
  }

  /** Changes a member's role. Demotion to viewer revokes their team keys in the same transaction (viewers hold none). */
  async setRole(teamId: string, userId: string, role: TeamRole, actor: Actor): Promise<TeamMember> {
    return withTransaction(this.deps.db, async (tx) => {
      const members = await lockTeamMembers(tx, teamId);
      const actorRole = requireMemberManager(members, actor, role);
      const current = await this.memberRow(tx, teamId, userId);
      if (!teamPermissions.canManageRole(actorRole, current.role)) throw forbidden('Only owners can change an owner.');
      if (current.role === 'owner' && role !== 'owner') ensureAnotherOwner(members, userId);
      await tx('team_members').where({ team_id: teamId, user_id: userId }).update({ role });
      const keysRevoked = !teamPermissions.createKeys(role) ? await revokeMemberTeamKeys(tx, teamId, userId, this.deps.clock.now()) : 0;
      await this.deps.audit.record(tx, actor, 'team.member_role', { type: 'team', id: teamId }, {
        userId, from: current.role, to: role, ...(keysRevoked > 0 && { keysRevoked }),
      });
      return { ...current, role };
    });
  }

  /**
   * Removes a member and revokes the team keys they own: leaving a team ends the ability to spend its money.
   * Owners and admins keep seeing those keys (revoked) with their spend history.
   */
  async removeMember(teamId: string, userId: string, actor: Actor): Promise<void> {
    await withTransaction(this.deps.db, async (tx) => {
      const members = await lockTeamMembers(tx, teamId);
      // The caller's own membership first: otherwise "member not found" vs "team not found" would tell an
      // outsider who is in the team.
      if (!members.has(actor.userId)) throw notFound('Team');
      const current = await this.memberRow(tx, teamId, userId);
      if (userId !== actor.userId) {
        const actorRole = requireMemberManager(members, actor, current.role);
        if (!teamPermissions.canManageRole(actorRole, current.role)) throw forbidden('Only owners can remove an owner.');
      }
      if (current.role === 'owner') ensureAnotherOwner(members, userId);
      await tx('team_members').where({ team_id: teamId, user_id: userId }).delete();
      const keysRevoked = await revokeMemberTeamKeys(tx, teamId, userId, this.deps.clock.now());
      await this.deps.audit.record(tx, actor, 'team.member_remove', { type: 'team', id: teamId }, { userId, keysRevoked });
    });
  }

  private async memberRow(q: Queryable, teamId: string, userId: string): Promise<TeamMember> {
    const row = await q('team_members as tm')
      .join('users as u', 'u.id', 'tm.user_id')
      .where({ 'tm.team_id': teamId, 'tm.user_id': userId })
      .first('u.id as userId', 'u.email', 'u.name', 'tm.role');
    if (!row) throw notFound('Member');
    return row as TeamMember;
  }
}

/** A team always has an owner: asked of the locked membership rows, so two owners leaving at once cannot both pass. */
function ensureAnotherOwner(members: Map<string, TeamRole>, leavingUserId: string): void {
  const others = [...members].filter(([userId, role]) => role === 'owner' && userId !== leavingUserId);
  if (others.length === 0) throw conflict('A team needs at least one owner; make someone else owner first.');
}

function teamFromRow(r: Record<string, unknown>): Team {
  return {
    id: r.id as string,
    name: r.name as string,
    balanceMicro: toMicro(r.balance_micro),
    heldMicro: toMicro(r.held_micro),
    role: (r.role as TeamRole | null) ?? null,
  };
}
