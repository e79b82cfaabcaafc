import type { Db } from '../../db/knex.js';
import { toDate, toInt } from '../../db/rows.js';
import type { Clock } from '../clock.js';
import { randomBase62 } from '../ids.js';
import { eventsFromFirings } from './alert-events.js';
import { nextAttemptAt } from './backoff.js';
import { webhookHeaders } from './signature.js';

/** What sending one request answered: the outbound door (src/outbound/webhook-post.ts) in production. */
export type SendResult = { statusCode: number } | { error: string };
export type SendWebhook = (url: string, body: string, headers: Record<string, string>) => Promise<SendResult>;

export interface WebhookDeliveryDeps {
  db: Db;
  clock: Clock;
  send: SendWebhook;
  /** Jitter source of the retry schedule (tests pass () => 0). */
  random?: () => number;
}

export interface DeliveryRun {
  events: number;
  delivered: number;
  retrying: number;
  failed: number;
}

/** How long a claim keeps other senders off a delivery: well past the request timeout. */
export const CLAIM_MS = 60_000;
const CLAIM_BATCH = 20;

interface Claimed {
  id: number;
  eventId: string;
  attempts: number;
  createdAt: Date;
  url: string | null;
  secret: string | null;
  payload: string;
}

/**
 * Sends the outbox (docs/webhooks.md). Each round claims due deliveries with one conditional UPDATE — only rows
 * nobody holds a live claim on — then reads back what THIS run claimed, so two instances never send the same attempt
 * at once, and a sender that dies mid-attempt leaves a claim that runs out after CLAIM_MS for another to take over.
 * Receivers may still see an attempt twice (the process died after they answered): they dedupe on webhook-id.
 */
export class WebhookDeliveryService {
  constructor(private readonly deps: WebhookDeliveryDeps) {}

  async deliverDue(): Promise<DeliveryRun> {
    const run: DeliveryRun = { events: await eventsFromFirings(this.deps.db, this.deps.clock.now()), delivered: 0, retrying: 0, failed: 0 };
    for (;;) {
      const claimed = await this.claim(`${randomBase62(16)}`);
      if (!claimed.rows.length) return run;
      const outcomes = await Promise.all(claimed.rows.map((d) => this.attempt(d, claimed.by)));
      for (const o of outcomes) run[o]++;
    }
  }

  /** Claims up to a batch of due deliveries for `by`, and returns those it got. Exported for the crash test. */
  async claim(by: string): Promise<{ by: string; rows: Claimed[] }> {
    const { db } = this.deps;
    const now = this.deps.clock.now();
    const due = (q: ReturnType<Db>) => q.where('status', 'pending').where('next_attempt_at', '<=', now)
      .andWhere((w) => w.whereNull('claimed_until').orWhere('claimed_until', '<', now));
    const ids = (await due(db('webhook_deliveries')).orderBy(['next_attempt_at', 'id']).limit(CLAIM_BATCH).pluck('id')) as number[];
    if (!ids.length) return { by, rows: [] };
    await due(db('webhook_deliveries').whereIn('id', ids)).update({ claimed_by: by, claimed_until: new Date(now.getTime() + CLAIM_MS) });
    const rows = (await db('webhook_deliveries as d')
      .join('events as e', 'e.id', 'd.event_id')
      .leftJoin('webhook_endpoints as w', (j) => j.on('w.id', 'd.endpoint_id').andOnNull('w.deleted_at'))
      .where('d.claimed_by', by).where('d.status', 'pending')
      .select('d.id', 'd.event_id', 'd.attempts', 'd.created_at', 'w.url', 'w.secret', 'e.payload')) as Array<Record<string, unknown>>;
    return {
      by,
      rows: rows.map((r) => ({
        id: toInt(r.id), eventId: r.event_id as string, attempts: toInt(r.attempts), createdAt: toDate(r.created_at),
        url: (r.url as string | null) ?? null, secret: (r.secret as string | null) ?? null, payload: r.payload as string,
      })),
    };
  }

  private async attempt(d: Claimed, by: string): Promise<'delivered' | 'retrying' | 'failed'> {
    if (d.url === null || d.secret === null) return this.finish(d, by, { error: 'endpoint deleted' }, true);
    const result = await this.deps.send(d.url, d.payload, webhookHeaders(d.secret, d.eventId, this.deps.clock.now(), d.payload))
      .catch((): SendResult => ({ error: 'sending failed' }));
    return this.finish(d, by, result, false);
  }

  /** Records an attempt, only while this run still holds the claim (a lost claim: another sender has the row). */
  private async finish(d: Claimed, by: string, result: SendResult, final: boolean): Promise<'delivered' | 'retrying' | 'failed'> {
    const now = this.deps.clock.now();
    const ok = 'statusCode' in result && result.statusCode >= 200 && result.statusCode < 300;
    const attempts = d.attempts + (final ? 0 : 1);
    const next = ok || final ? null : nextAttemptAt(d.createdAt, attempts, now, (this.deps.random ?? Math.random)());
    const status = ok ? 'delivered' : next ? 'pending' : 'failed';
    await this.deps.db('webhook_deliveries').where({ id: d.id, claimed_by: by }).update({
      status, attempts, claimed_by: null, claimed_until: null,
      last_status_code: 'statusCode' in result ? result.statusCode : null,
      last_error: 'error' in result ? result.error.slice(0, 200) : ok ? null : `HTTP ${result.statusCode}`,
      ...(ok && { delivered_at: now }),
      ...(next && { next_attempt_at: next }),
    });
    return ok ? 'delivered' : next ? 'retrying' : 'failed';
  }
}
