import type { WebhookDeliveryService } from '../domain/webhooks/delivery.service.js';
import type { Job } from './job.js';

/**
 * Every 15 seconds: alert firings become events, and due webhook deliveries are sent (docs/webhooks.md). The lease
 * keeps one instance sending per run; the claims on each delivery would keep two apart anyway.
 */
export function deliverWebhooksJob(delivery: WebhookDeliveryService): Job {
  return {
    name: 'deliver-webhooks',
    schedule: '*/15 * * * * *',
    leaseMs: 5 * 60_000,
    async run() {
      const r = await delivery.deliverDue();
      return `${r.events} events from alerts, ${r.delivered} delivered, ${r.retrying} to retry, ${r.failed} failed`;
    },
  };
}
