/** The event types a webhook endpoint may subscribe to (docs/webhooks.md lists their payloads). */
export const EVENT_TYPES = [
  'key.limit_threshold',
  'key.limit_reached',
  'key.expiring',
  'key.expired',
  'key.revoked',
  'key.rotated',
  'key.leaked',
  'balance.threshold',
  'team.balance_threshold',
  'member.budget_threshold',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Sent to one endpoint on request ("Send test"); not subscribable. */
export const TEST_EVENT_TYPE = 'webhook.test';

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}
