/** The event types a webhook endpoint may subscribe to (docs/webhooks.md lists their payloads). */
export const EVENT_TYPES = [
  'key.limit_threshold',
  'key.limit_reached',
  'key.expiring',
  'key.expired',
  'key.revoked',
  'key.rotated',
  'key.rotation_due',
  'key.rotated_secret',
  'key.leaked',
  'balance.threshold',
  'team.balance_threshold',
  'member.budget_threshold',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * The event that carries a scheduled rotation's new secret (docs/webhooks.md, "Scheduled rotation"). It never goes
 * through the outbox: it is sent at once, and what the events table keeps of it has no secret.
 */
export const SECRET_EVENT_TYPE: EventType = 'key.rotated_secret';

/** Sent to one endpoint on request ("Send test"); not subscribable. */
export const TEST_EVENT_TYPE = 'webhook.test';

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}
