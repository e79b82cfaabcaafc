import { generateSecret, lastFour } from '../../auth/secret-format.js';
import type { Db } from '../../db/knex.js';
import { withTransaction } from '../../db/transaction.js';
import type { Clock } from '../clock.js';
import { SECRET_EVENT_TYPE } from '../events/event-types.js';
import { eventPayload, recordSentEvent, subscribedEndpoints } from '../events/events.js';
import { recordKeyEvent } from '../events/key-events.js';
import { newId, randomBase62 } from '../ids.js';
import type { SendResult, SendWebhook } from '../webhooks/delivery.service.js';
import { webhookHeaders } from '../webhooks/signature.js';
import type { ApiKey } from './key.js';
import { shortestKeyAgeDays } from './key-policy.service.js';
import type { KeysService } from './keys.service.js';
import { KEY_BATCH, keyIdsWhere } from './key-batches.js';

export interface KeyRotationDeps {
  db: Db;
  clock: Clock;
  keys: KeysService;
  /** The outbound door (src/outbound/webhook-post.ts): its address policy and timeout apply to the secret's delivery too. */
  send: SendWebhook;
}

export interface RotationRun {
  /** `key.rotation_due` events recorded in this run. */
  warned: number;
  /** Keys rotated by schedule in this run (their secret delivered with a 2xx). */
  rotated: string[];
  /** Scheduled rotations that did not happen (no receiver answered 2xx, or none exists); the next run tries again. */
  failed: string[];
}

const DAY_MS = 24 * 3600_000;
/**
 * Warnings before the rotate-by date (docs/webhooks.md): a week and a day ahead, and once when it has passed
 * (`overdue`), since an overdue key is what the rule is about. A key that enters a horizon late (a new or stricter
 * policy) gets only the latest one that applies, like the expiry warnings.
 */
export const ROTATION_WARNINGS = [{ horizon: '7d', ms: 7 * DAY_MS }, { horizon: '1d', ms: DAY_MS }, { horizon: 'overdue', ms: 0 }] as const;
export type RotationHorizon = (typeof ROTATION_WARNINGS)[number]['horizon'];
/** The grace period of a scheduled rotation: a day for the receiver to deploy the new key before the old one retires. */
export const SCHEDULED_GRACE_SECONDS = 24 * 3600;
/** How long a run's claim on a key keeps other runs off it: well past the webhook timeout of every endpoint. */
export const ROTATION_CLAIM_MS = 5 * 60_000;
const WORKING = ['active', 'limit_reached', 'disabled'] as const;

/**
 * When a scheduled rotation whose delivery failed is tried again: the next run (a minute), then doubling up to an
 * hour apart, so a receiver that is down gets a fresh secret a few dozen times a day, not every minute.
 */
export function scheduledRetryDelayMs(failures: number): number {
  return Math.min(60_000 * 2 ** Math.max(0, failures - 1), 3600_000);
}

/** Which warning a key `msLeft` before its rotate-by date is due (null: none yet). */
export function rotationHorizon(msLeft: number): RotationHorizon | null {
  if (msLeft <= 0) return 'overdue';
  if (msLeft <= DAY_MS) return '1d';
  return msLeft <= 7 * DAY_MS ? '7d' : null;
}

/**
 * Rotation that happens (docs/security.md, "Rotation that happens"): the rotate-keys job warns about keys nearing
 * their rotate-by date and rotates the keys that asked for it.
 *
 * The scheduled rotation never stores the new secret. It is generated in memory, sent at once in a signed
 * `key.rotated_secret` delivery to the owner's endpoints, and only when one of them answers 2xx is the successor
 * committed — with the hash of that secret, as every key is stored. A receiver that fails leaves no successor (a
 * later run tries again with a fresh secret, backing off from a minute to an hour); a claim on the old key row (one conditional UPDATE) keeps two runs from
 * sending at once, and the commit checks the claim is still its own, so retries never make two successors.
 */
export class KeyRotationService {
  constructor(private readonly deps: KeyRotationDeps) {}

  async run(): Promise<RotationRun> {
    const now = this.deps.clock.now();
    const warned = await this.warnRotationDue(now);
    const { rotated, failed } = await this.rotateDueKeys();
    return { warned, rotated, failed };
  }

  /** `key.rotation_due` once per key and horizon: the dedupe key makes a concurrent run's duplicate a no-op. */
  async warnRotationDue(now: Date): Promise<number> {
    const days = await shortestKeyAgeDays(this.deps.db);
    if (days === null) return 0;
    // A key can be due within 7 days only if it was created before now + 7 d - the shortest age any policy allows.
    const bound = new Date(now.getTime() + ROTATION_WARNINGS[0].ms - days * DAY_MS);
    const ids = await keyIdsWhere(this.deps.db, (q) => q.whereIn('status', WORKING).whereNull('revoked_at').whereNull('rotated_to_id').where('created_at', '<=', bound));
    let warned = 0;
    for (let i = 0; i < ids.length; i += KEY_BATCH) {
      const keys = await this.deps.keys.forJobs(ids.slice(i, i + KEY_BATCH));
      const wanted = keys.flatMap((key) => {
        const { rotateBy } = key;
        const horizon = rotateBy && rotationHorizon(rotateBy.getTime() - now.getTime());
        return horizon ? [{ key, rotateBy: rotateBy!, horizon, dedupeKey: `key.rotation_due:${key.id}:${horizon}` }] : [];
      });
      if (!wanted.length) continue;
      const done = new Set((await this.deps.db('events').whereIn('dedupe_key', wanted.map((w) => w.dedupeKey)).pluck('dedupe_key')) as string[]);
      for (const w of wanted.filter((x) => !done.has(x.dedupeKey))) {
        await withTransaction(this.deps.db, (tx) => recordKeyEvent(tx, 'key.rotation_due', w.key.id, now, {
          horizon: w.horizon, rotateBy: w.rotateBy.toISOString(), autoRotate: w.key.autoRotate,
        }, w.dedupeKey));
        warned++;
      }
    }
    return warned;
  }

  /** Rotates every key with autoRotate whose rotate-by date has come, one key at a time. */
  async rotateDueKeys(): Promise<Pick<RotationRun, 'rotated' | 'failed'>> {
    const out: Pick<RotationRun, 'rotated' | 'failed'> = { rotated: [], failed: [] };
    const days = await shortestKeyAgeDays(this.deps.db);
    if (days === null) return out;
    const now = this.deps.clock.now();
    const ids = await keyIdsWhere(this.deps.db, (q) => q.where('auto_rotate', true).whereIn('status', ['active', 'limit_reached']).whereNull('revoked_at')
      .whereNull('rotated_to_id').where('created_at', '<=', new Date(now.getTime() - days * DAY_MS))
      .andWhere((w) => w.whereNull('auto_rotate_claimed_until').orWhere('auto_rotate_claimed_until', '<=', now)));
    for (let i = 0; i < ids.length; i += KEY_BATCH)
      for (const key of await this.deps.keys.forJobs(ids.slice(i, i + KEY_BATCH)))
        if (key.rotateBy && key.rotateBy.getTime() <= now.getTime()) {
          const outcome = await this.rotateOne(key);
          if (outcome !== 'claimed_elsewhere') out[outcome].push(key.id);
        }
    return out;
  }

  /** Claim, deliver, commit (or release until the next attempt). Another run holding the claim is doing it. */
  private async rotateOne(key: ApiKey): Promise<'rotated' | 'failed' | 'claimed_elsewhere'> {
    const by = randomBase62(16);
    const now = this.deps.clock.now();
    const claimed = await this.deps.db('api_keys').where({ id: key.id }).whereNull('rotated_to_id')
      .andWhere((w) => w.whereNull('auto_rotate_claimed_until').orWhere('auto_rotate_claimed_until', '<=', now))
      .update({ auto_rotate_claimed_by: by, auto_rotate_claimed_until: new Date(now.getTime() + ROTATION_CLAIM_MS) });
    if (!claimed) return 'claimed_elsewhere';
    const successor = { id: newId(), secret: generateSecret('mbk_') };
    const retireAt = new Date(now.getTime() + SCHEDULED_GRACE_SECONDS * 1000);
    // What the events table keeps: everything the receiver got except the secret.
    const data = {
      keyId: key.id, keyName: key.name, teamId: key.teamId, expiresAt: key.expiresAt?.toISOString() ?? null, successorId: successor.id,
      successorLast4: lastFour(successor.secret), gracePeriodSeconds: SCHEDULED_GRACE_SECONDS, retireAt: retireAt.toISOString(),
    };
    const eventId = `evt_${newId()}`;
    const endpoints = await subscribedEndpoints(this.deps.db, { userId: key.ownerId, teamId: key.teamId }, SECRET_EVENT_TYPE);
    const body = eventPayload(SECRET_EVENT_TYPE, now, { ...data, secret: successor.secret });
    const sent = await Promise.all(endpoints.map(async (e) => {
      const r: SendResult = await this.deps.send(e.url, body, webhookHeaders(e.secret, eventId, now, body)).catch(() => ({ error: 'sending failed' }));
      return { endpointId: e.id, statusCode: 'statusCode' in r ? r.statusCode : null, error: 'error' in r ? r.error : null };
    }));
    const delivered = sent.some((s) => s.statusCode !== null && s.statusCode >= 200 && s.statusCode < 300);
    const event = { id: eventId, type: SECRET_EVENT_TYPE, userId: key.ownerId, teamId: key.teamId, keyId: key.id };
    return withTransaction(this.deps.db, async (tx) => {
      const committed = delivered && (await this.deps.keys.commitScheduledRotation(tx, key.id, by, SCHEDULED_GRACE_SECONDS, successor));
      await recordSentEvent(tx, { ...event, data: { ...data, rotated: committed, ...(!committed && { successorId: null, successorLast4: null }) } }, sent, this.deps.clock.now());
      // Released, until the next attempt is due; a committed rotation cleared it already.
      if (!committed) {
        const row = (await tx('api_keys').where({ id: key.id, auto_rotate_claimed_by: by }).first('auto_rotate_failures')) as { auto_rotate_failures: unknown } | undefined;
        const failures = Number(row?.auto_rotate_failures ?? 0) + 1;
        await tx('api_keys').where({ id: key.id, auto_rotate_claimed_by: by }).update({
          auto_rotate_claimed_by: null, auto_rotate_failures: failures, auto_rotate_claimed_until: new Date(this.deps.clock.now().getTime() + scheduledRetryDelayMs(failures)),
        });
      }
      return committed ? 'rotated' : 'failed';
    });
  }

}
