/**
 * The team permission table (SPEC §4), as data, so every door asks the same questions.
 * | role   | create keys | own keys | all keys + usage | manage members      | see balance |
 * | owner  | yes         | yes      | yes              | yes (incl. admins)  | yes         |
 * | admin  | yes         | yes      | yes              | yes (not owners)    | yes         |
 * | member | yes         | yes      | no               | no                  | yes         |
 * | viewer | no          | —        | no               | no                  | yes         |
 */
export const TEAM_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

export const teamPermissions = {
  createKeys: (role: TeamRole) => role !== 'viewer',
  manageOwnKeys: (role: TeamRole) => role !== 'viewer',
  manageAllKeys: (role: TeamRole) => role === 'owner' || role === 'admin',
  manageMembers: (role: TeamRole) => role === 'owner' || role === 'admin',
  seeBalance: (_role: TeamRole) => true,
  /** Owners manage everyone; admins manage admins, members and viewers but never touch owners. */
  canManageRole: (actorRole: TeamRole, targetRole: TeamRole) =>
    actorRole === 'owner' || (actorRole === 'admin' && targetRole !== 'owner'),
} as const;

export function isTeamRole(value: string): value is TeamRole {
  return (TEAM_ROLES as readonly string[]).includes(value);
}
