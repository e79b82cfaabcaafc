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

async function endpointsFor(tx: Queryable, event: NewEvent): Promise<string[]> {
  if (event.endpointId) return [event.endpointId];
  const q = tx('webhook_endpoints').whereNull('deleted_at');
  if (event.teamId) q.where({ team_id: event.teamId });
  else if (event.userId) q.where({ user_id: event.userId }).whereNull('team_id');
  else return [];
  const rows = (await q.select('id', 'events')) as Array<{ id: string; events: string }>;
  return rows.filter((r) => subscribed(r.events).includes(event.type)).map((r) => r.id);
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
