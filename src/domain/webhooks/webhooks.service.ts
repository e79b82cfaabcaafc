import type { Db, Queryable } from '../../db/knex.js';
import { toDate, toDateOrNull, toInt } from '../../db/rows.js';
import { withTransaction } from '../../db/transaction.js';
import { webhookUrlProblem } from '../../outbound/address-policy.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Clock } from '../clock.js';
import { badInput, notFound } from '../errors.js';
import { EVENT_TYPES, isEventType, TEST_EVENT_TYPE, type EventType } from '../events/event-types.js';
import { recordEvent, subscribed } from '../events/events.js';
import { newId } from '../ids.js';
import { lockedTeamRoleOf, teamRoleOf } from '../teams/membership.js';
import { teamPermissions } from '../teams/roles.js';
import { newWebhookSecret } from './signature.js';

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: EventType[];
  teamId: string | null;
  createdAt: Date;
}

export interface WebhookDelivery {
  id: number;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

export interface CreateWebhookInput {
  url: string;
  events: string[];
  teamId?: string | null;
}

export interface WebhooksDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  /** MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: URLs may name loopback / private addresses. */
  allowPrivate: boolean;
}

const DELIVERIES_SHOWN = 50;

/**
 * Webhook endpoints (docs/webhooks.md): a user's own, receiving the events of their personal keys and balance, or a
 * team's, managed by its owners and admins (the roles that manage members and see every team key). Someone who may
 * not manage an endpoint gets "not found", so ids reveal nothing.
 */
export class WebhooksService {
  constructor(private readonly deps: WebhooksDeps) {}

  /** The signing secret is in this answer only. */
  async create(input: CreateWebhookInput, actor: Actor): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const url = input.url.trim();
    const problem = webhookUrlProblem(url, this.deps.allowPrivate);
    if (problem) throw badInput(problem, { url: problem });
    const events = [...new Set(input.events)];
    if (!events.length || !events.every(isEventType)) {
      const message = `Choose at least one event of: ${EVENT_TYPES.join(', ')}.`;
      throw badInput(message, { events: message });
    }
    const teamId = input.teamId ?? null;
    return withTransaction(this.deps.db, async (tx) => {
      if (teamId) await this.requireTeamManager(tx, teamId, actor, true);
      const id = newId();
      const secret = newWebhookSecret();
      const now = this.deps.clock.now();
      await tx('webhook_endpoints').insert({
        id, user_id: teamId ? null : actor.userId, team_id: teamId, url, events: JSON.stringify(events), secret, created_by: actor.userId, created_at: now,
      });
      await this.deps.audit.record(tx, actor, 'webhook.create', { type: 'webhook', id }, { url, events, teamId });
      return { endpoint: { id, url, events: events as EventType[], teamId, createdAt: now }, secret };
    });
  }

  /** The caller's own endpoints, or a team's (owners and admins). */
  async list(filter: { teamId?: string | null }, actor: Actor): Promise<WebhookEndpoint[]> {
    const q = this.deps.db('webhook_endpoints').whereNull('deleted_at').orderBy('created_at', 'desc');
    if (filter.teamId) {
      await this.requireTeamManager(this.deps.db, filter.teamId, actor, false);
      q.where({ team_id: filter.teamId });
    } else q.where({ user_id: actor.userId }).whereNull('team_id');
    return ((await q) as Array<Record<string, unknown>>).map(endpointFromRow);
  }

  async get(id: string, actor: Actor): Promise<WebhookEndpoint> {
    return endpointFromRow(await this.loadFor(this.deps.db, id, actor, false));
  }

  async delete(id: string, actor: Actor): Promise<void> {
    await withTransaction(this.deps.db, async (tx) => {
      const row = await this.loadFor(tx, id, actor, true);
      await tx('webhook_endpoints').where({ id }).update({ deleted_at: this.deps.clock.now() });
      await this.deps.audit.record(tx, actor, 'webhook.delete', { type: 'webhook', id }, { url: row.url });
    });
  }

  /** Queues a `webhook.test` event for this endpoint only; the delivery job sends it like any other. */
  async test(id: string, actor: Actor): Promise<string> {
    return withTransaction(this.deps.db, async (tx) => {
      const row = await this.loadFor(tx, id, actor, true);
      const eventId = await recordEvent(tx, {
        type: TEST_EVENT_TYPE, userId: (row.user_id as string | null) ?? null, teamId: (row.team_id as string | null) ?? null, endpointId: id,
        data: { endpointId: id, message: 'A test event sent from ModelBridge.' },
      }, this.deps.clock.now());
      return eventId!;
    });
  }

  /** The latest deliveries to an endpoint, newest first. */
  async deliveries(id: string, actor: Actor): Promise<WebhookDelivery[]> {
    await this.loadFor(this.deps.db, id, actor, false);
    const rows = (await this.deps.db('webhook_deliveries as d').join('events as e', 'e.id', 'd.event_id')
      .where('d.endpoint_id', id).orderBy('d.id', 'desc').limit(DELIVERIES_SHOWN)
      .select('d.*', 'e.type as event_type')) as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      id: toInt(r.id), eventId: r.event_id as string, eventType: r.event_type as string, status: r.status as WebhookDelivery['status'],
      attempts: toInt(r.attempts), lastStatusCode: r.last_status_code === null ? null : toInt(r.last_status_code),
      lastError: (r.last_error as string | null) ?? null, nextAttemptAt: r.status === 'pending' ? toDate(r.next_attempt_at) : null,
      deliveredAt: toDateOrNull(r.delivered_at), createdAt: toDate(r.created_at),
    }));
  }

  private async loadFor(q: Queryable, id: string, actor: Actor, lock: boolean): Promise<Record<string, unknown>> {
    const row = await q('webhook_endpoints').where({ id }).whereNull('deleted_at').first();
    if (!row) throw notFound('Webhook');
    if (row.team_id) await this.requireTeamManager(q, row.team_id as string, actor, lock, 'Webhook');
    else if (row.user_id !== actor.userId) throw notFound('Webhook');
    return row;
  }

  /** Owners and admins of the team; with `lock`, their membership row is held for the transaction (docs/security.md). */
  private async requireTeamManager(q: Queryable, teamId: string, actor: Actor, lock: boolean, what = 'Team'): Promise<void> {
    const role = await (lock ? lockedTeamRoleOf : teamRoleOf)(q, teamId, actor.userId);
    if (!role || !teamPermissions.manageMembers(role)) throw notFound(what);
  }
}

function endpointFromRow(r: Record<string, unknown>): WebhookEndpoint {
  return {
    id: r.id as string, url: r.url as string, events: subscribed(r.events as string).filter(isEventType),
    teamId: (r.team_id as string | null) ?? null, createdAt: toDate(r.created_at),
  };
}
