import type { Queryable } from '../../db/knex.js';
import type { AuditEvent } from './audit.service.js';
import type { AuditNames, NamedUser } from './describe-event.js';

/** Detail fields that hold the id of a user, key or plan (see the audit.record calls). */
const USER_FIELDS = ['userId', 'ownerId'];

/**
 * The names of everything a page of audit rows mentions, in one query per table, for describeAuditEvent. Ids of
 * deleted rows are simply absent.
 */
export async function auditNames(q: Queryable, events: readonly AuditEvent[]): Promise<AuditNames> {
  const ids = { users: new Set<string>(), keys: new Set<string>(), teams: new Set<string>(), tokens: new Set<string>(), plans: new Set<string>() };
  for (const e of events) {
    const d = e.details ?? {};
    if (e.actorId) ids.users.add(e.actorId);
    if (e.targetId) {
      const set = { user: ids.users, key: ids.keys, team: ids.teams, token: ids.tokens, plan: ids.plans }[e.targetType];
      set?.add(e.targetId);
    }
    for (const field of USER_FIELDS) if (typeof d[field] === 'string') ids.users.add(d[field] as string);
    if (typeof d.successorId === 'string') ids.keys.add(d.successorId);
    if (typeof d.teamId === 'string') ids.teams.add(d.teamId);
    if (e.action === 'user.set_plan') for (const field of ['from', 'to']) if (typeof d[field] === 'string') ids.plans.add(d[field] as string);
  }
  const named = async (table: string, set: Set<string>, column = 'name'): Promise<Map<string, string>> => {
    if (set.size === 0) return new Map();
    const rows = await q(table).whereIn('id', [...set]).select('id', column);
    return new Map(rows.map((r: Record<string, unknown>) => [r.id as string, r[column] as string]));
  };
  const userRows = ids.users.size ? await q('users').whereIn('id', [...ids.users]).select('id', 'email', 'name') : [];
  return {
    users: new Map<string, NamedUser>(userRows.map((r: Record<string, unknown>) => [r.id as string, { email: r.email as string, name: r.name as string }])),
    keys: await named('api_keys', ids.keys),
    teams: await named('teams', ids.teams),
    tokens: await named('management_tokens', ids.tokens),
    plans: await named('plans', ids.plans),
  };
}
