import type { Queryable } from '../../db/knex.js';
import type { Actor } from '../actor.js';
import { forbidden, notFound } from '../errors.js';
import { teamPermissions, type TeamRole } from './roles.js';

/**
 * Reading team membership. A role check that guards a write must hold a lock on the membership row it read, in the
 * write's own transaction: otherwise a concurrent removal or demotion commits between the check and the write, and
 * the write (a new team key, the last owner leaving) lands for someone who no longer has the right
 * (docs/security.md, "Team membership"). On SQLite knex drops FOR UPDATE; its single writer already serialises.
 *
 * Lock order: membership rows before key rows (keys.service locks the caller's membership before the key), and a
 * team's membership rows all at once, in primary-key order, so two membership changes of one team queue instead of
 * deadlocking.
 */

/** The caller's role, unlocked: for reads only. */
export async function teamRoleOf(q: Queryable, teamId: string, userId: string): Promise<TeamRole | null> {
  const row = await q('team_members').where({ team_id: teamId, user_id: userId }).first('role');
  return (row?.role as TeamRole | undefined) ?? null;
}

/** The caller's role, with their membership row locked until the transaction ends: for checks that guard a write. */
export async function lockedTeamRoleOf(tx: Queryable, teamId: string, userId: string): Promise<TeamRole | null> {
  const row = await tx('team_members').where({ team_id: teamId, user_id: userId }).forUpdate().first('role');
  return (row?.role as TeamRole | undefined) ?? null;
}

/**
 * For the settings only owners and admins change (key controls, member budgets, key guard-rails): the caller's role
 * under a lock in the write's transaction, so a demotion running now finishes first, or waits for this write.
 */
export async function requireTeamManager(tx: Queryable, teamId: string, actor: Actor, refusal: string): Promise<void> {
  const role = await lockedTeamRoleOf(tx, teamId, actor.userId);
  if (!role) throw notFound('Team');
  if (!teamPermissions.manageMembers(role)) throw forbidden(refusal);
}

/**
 * Every membership of a team, locked (next-key locks on the team's primary-key range, so no member can be added
 * either): membership changes of one team run one after the other, and "is there another owner?" is answered from
 * rows nobody else can change before this transaction commits.
 */
export async function lockTeamMembers(tx: Queryable, teamId: string): Promise<Map<string, TeamRole>> {
  const rows = await tx('team_members').where({ team_id: teamId }).orderBy('user_id').forUpdate().select('user_id', 'role');
  return new Map(rows.map((r: { user_id: string; role: TeamRole }) => [r.user_id, r.role]));
}

/** Revokes the team keys a member owns, in the transaction that removes them or demotes them to viewer. */
export async function revokeMemberTeamKeys(tx: Queryable, teamId: string, userId: string, now: Date): Promise<number> {
  return tx('api_keys')
    .where({ team_id: teamId, owner_id: userId })
    .whereNot('status', 'revoked')
    .update({ status: 'revoked', revoked_at: now, updated_at: now });
}

/** The caller's role from the team's locked membership rows, if it lets them manage a member of `targetRole`. */
export function requireMemberManager(members: Map<string, TeamRole>, actor: Actor, targetRole: TeamRole): TeamRole {
  const role = members.get(actor.userId);
  if (!role) throw notFound('Team');
  if (!teamPermissions.manageMembers(role)) throw forbidden('Only team owners and admins manage members.');
  if (!teamPermissions.canManageRole(role, targetRole)) throw forbidden('Only owners can grant or manage the owner role.');
  return role;
}
