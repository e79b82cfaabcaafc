import type { Knex } from 'knex';
import type { Queryable } from '../../db/knex.js';
import { toDate } from '../../db/rows.js';
import type { Actor } from '../actor.js';
import type { Clock } from '../clock.js';

export type AuditTarget = 'key' | 'team' | 'user' | 'balance' | 'token' | 'plan' | 'model' | 'job' | 'webhook' | 'installation';

export interface AuditEvent {
  id: string;
  actorId: string | null;
  actorKind: string;
  action: string;
  targetType: string;
  targetId: string | null;
  details: Record<string, unknown> | null;
  ip: string | null;
  userAgent: string | null;
  createdAt: Date;
}

export interface AuditFilter {
  targetType?: string;
  targetId?: string;
  /** A person (sessions and their management tokens). */
  actorId?: string;
  /** user, token, cli, system, key, scanner. */
  actorKind?: string;
  action?: string;
  /** Period: from inclusive, to exclusive. */
  from?: Date;
  to?: Date;
  limit?: number;
  beforeId?: string;
}

/**
 * Append-only audit trail. Always written inside the transaction of the change it describes, so a change and its
 * record commit together. Details must never carry secrets: callers pass ids, names, amounts, statuses.
 */
export class AuditService {
  constructor(private readonly clock: Clock) {}

  async record(
    q: Queryable,
    actor: Actor,
    action: string,
    target: { type: AuditTarget; id: string | null },
    details?: Record<string, unknown>,
  ): Promise<void> {
    await q('audit_events').insert({
      actor_id: actor.via === 'system' || actor.via === 'key' || actor.via === 'scanner' ? null : actor.userId,
      actor_kind: actor.via === 'session' || actor.via === 'token' ? (actor.via === 'token' ? 'token' : 'user') : actor.via,
      action,
      target_type: target.type,
      target_id: target.id,
      details: details ? JSON.stringify(details) : null,
      ip: actor.ip?.slice(0, 64) ?? null,
      user_agent: actor.userAgent?.slice(0, 255) ?? null,
      created_at: this.clock.now(),
    });
  }

  async list(q: Queryable, filter: AuditFilter = {}): Promise<AuditEvent[]> {
    let query: Knex.QueryBuilder = q('audit_events').orderBy('id', 'desc').limit(Math.min(filter.limit ?? 100, 500));
    if (filter.targetType) query = query.where('target_type', filter.targetType);
    if (filter.targetId) query = query.where('target_id', filter.targetId);
    if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
    if (filter.actorId) query = query.where('actor_id', filter.actorId);
    if (filter.actorKind) query = query.where('actor_kind', filter.actorKind);
    if (filter.action) query = query.where('action', filter.action);
    if (filter.from) query = query.where('created_at', '>=', filter.from);
    if (filter.to) query = query.where('created_at', '<', filter.to);
    const rows = await query;
    return rows.map((r: Record<string, unknown>) => ({
      id: String(r.id),
      actorId: (r.actor_id as string | null) ?? null,
      actorKind: r.actor_kind as string,
      action: r.action as string,
      targetType: r.target_type as string,
      targetId: (r.target_id as string | null) ?? null,
      details: r.details ? (JSON.parse(r.details as string) as Record<string, unknown>) : null,
      ip: (r.ip as string | null) ?? null,
      userAgent: (r.user_agent as string | null) ?? null,
      createdAt: toDate(r.created_at),
    }));
  }
}
