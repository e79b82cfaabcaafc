import type { Queryable } from '../../db/knex.js';
import { newId } from '../ids.js';
import type { EventType } from './event-types.js';

/**
 * Events feed webhooks through an outbox (docs/webhooks.md): recordEvent runs in the caller's transaction, so the
 * event and its deliveries commit with the change they describe, or not at all — nothing is lost if the process
 * dies after the commit, and nothing is sent for a change that rolled back.
 */
export interface NewEvent {
  type: EventType | 'webhook.test';
  /** Whose it is: a team's events go to the team's endpoints, personal ones to the user's own. */
  userId: string | null;
  teamId: string | null;
  keyId?: string | null;
  /** Ids, names and AUD strings; never a secret. */
  data: Record<string, unknown>;
  /** Recording the same dedupe key twice records one event (default: the event's own id, i.e. no dedupe). */
  dedupeKey?: string;
  firingId?: number;
  /** Deliver to this endpoint only, whatever it subscribes to (webhook.test). */
  endpointId?: string;
}

/** What a receiver gets: Standard Webhooks' shape. */
export function eventPayload(type: string, at: Date, data: Record<string, unknown>): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data });
}

/**
 * Inserts the event unless its dedupe key is recorded already, and one pending delivery per live endpoint of its
 * scope that subscribes to its type. Returns the event id, or null for a duplicate. A duplicate racing on another
 * connection waits on the unique key and is then ignored, so two instances record it once.
 */
export async function recordEvent(tx: Queryable, event: NewEvent, now: Date): Promise<string | null> {
  const id = `evt_${newId()}`;
  const dedupeKey = event.dedupeKey ?? id;
  await tx('events')
    .insert({
      id, type: event.type, user_id: event.userId, team_id: event.teamId, key_id: event.keyId ?? null,
      payload: eventPayload(event.type, now, event.data), dedupe_key: dedupeKey, firing_id: event.firingId ?? null, created_at: now,
    })
    .onConflict('dedupe_key')
    .ignore();
  const stored = await tx('events').where({ dedupe_key: dedupeKey }).first('id');
  if (stored?.id !== id) return null;
  const endpoints = await endpointsFor(tx, event);
  if (endpoints.length)
    await tx('webhook_deliveries').insert(endpoints.map((endpointId) => ({
      event_id: id, endpoint_id: endpointId, status: 'pending', attempts: 0, next_attempt_at: now, created_at: now,
    })));
  return id;
}

/**
 * Records an event that was already sent, outside the outbox (key.rotated_secret: its body held a secret, so it is
 * never stored and never sent again): the event with `data` as stored (no secret), and one finished delivery per
 * endpoint with the answer it gave.
 */
export async function recordSentEvent(
  tx: Queryable,
  event: Pick<NewEvent, 'type' | 'userId' | 'teamId' | 'keyId' | 'data'> & { id: string },
  sent: ReadonlyArray<{ endpointId: string; statusCode: number | null; error: string | null }>,
  now: Date,
): Promise<void> {
  await tx('events').insert({
    id: event.id, type: event.type, user_id: event.userId, team_id: event.teamId, key_id: event.keyId ?? null,
    payload: eventPayload(event.type, now, event.data), dedupe_key: event.id, firing_id: null, created_at: now,
  });
  if (!sent.length) return;
  await tx('webhook_deliveries').insert(sent.map((s) => {
    const ok = s.statusCode !== null && s.statusCode >= 200 && s.statusCode < 300;
    return {
      event_id: event.id, endpoint_id: s.endpointId, status: ok ? 'delivered' : 'failed', attempts: 1, next_attempt_at: now,
      last_status_code: s.statusCode, last_error: ok ? null : (s.error ?? `HTTP ${s.statusCode}`).slice(0, 200), delivered_at: ok ? now : null, created_at: now,
    };
  }));
}

async function endpointsFor(tx: Queryable, event: NewEvent): Promise<string[]> {
  if (event.endpointId) return [event.endpointId];
  return (await subscribedEndpoints(tx, event, event.type)).map((e) => e.id);
}

/** The live endpoints of a scope (a team's, else the user's own) that subscribe to `type`, with their URL and secret. */
export async function subscribedEndpoints(
  tx: Queryable, scope: { userId: string | null; teamId: string | null }, type: string,
): Promise<Array<{ id: string; url: string; secret: string }>> {
  const q = tx('webhook_endpoints').whereNull('deleted_at');
  if (scope.teamId) q.where({ team_id: scope.teamId });
  else if (scope.userId) q.where({ user_id: scope.userId }).whereNull('team_id');
  else return [];
  const rows = (await q.orderBy('id').select('id', 'events', 'url', 'secret')) as Array<{ id: string; events: string; url: string; secret: string }>;
  return rows.filter((r) => subscribed(r.events).includes(type)).map(({ id, url, secret }) => ({ id, url, secret }));
}

/** An endpoint's stored list of event types. */
export function subscribed(stored: string): string[] {
  try {
    const list = JSON.parse(stored) as unknown;
    return Array.isArray(list) ? list.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}
