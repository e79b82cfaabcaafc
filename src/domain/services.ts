import type { Db } from '../db/knex.js';
import type { Clock } from './clock.js';
import { AuditService } from './audit/audit.service.js';
import { UsersService } from './accounts/users.service.js';
import { LoginThrottle } from './accounts/login-throttle.js';
import { KeysService } from './keys/keys.service.js';
import { KeyPolicyService } from './keys/key-policy.service.js';
import { TeamControlsService } from './teams/team-controls.service.js';
import { TeamsService } from './teams/teams.service.js';
import { InvitesService } from './teams/invites.service.js';
import { TokensService } from './tokens/tokens.service.js';
import { BalancesService } from './billing/balances.service.js';
import { MeteringService } from './billing/metering.service.js';
import { ModelsService } from './models/models.service.js';
import { PlansService } from './accounts/plans.js';
import { UsageService } from './usage/usage.service.js';
import { UsageReports } from './usage/usage-reports.js';
import { KeyExpiryService } from './keys/expiry.service.js';
import { KeyRotationService } from './keys/rotation.service.js';
import { RefusalsService } from './keys/refusals.js';
import { AlertsService } from './billing/alerts.service.js';
import { LeaksService } from './keys/leaks.service.js';
import { ReconcileService } from './billing/reconcile.service.js';
import { RolloverService } from './billing/rollover.service.js';
import { StoredResponsesService } from './responses/stored-responses.service.js';
import { WebhookDeliveryService, type SendWebhook } from './webhooks/delivery.service.js';
import { WebhooksService } from './webhooks/webhooks.service.js';
import { postWebhook } from '../outbound/webhook-post.js';

/**
 * A hold nobody renews is released after this + the release job's minute: under 2 minutes for the holds of a dead
 * instance. Live instances renew theirs every third of it.
 */
export const DEFAULT_HOLD_TTL_MS = 45_000;

export interface ServicesOptions {
  db: Db;
  clock: Clock;
  timeZone: string;
  /** How long a hold lives unless its instance renews it (default 45 s; see MeteringDeps.holdTtlMs). */
  holdTtlMs?: number;
  onUserDisabled?: (userId: string) => Promise<void>;
  /** MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE (default false), and the sender (tests may replace it). */
  webhooks?: { allowPrivate: boolean; send?: SendWebhook; random?: () => number };
}

/** Wires the domain once; every door (portal, tRPC, proxy, jobs, CLI) receives this same object. */
export function createServices(options: ServicesOptions) {
  const { db, clock, timeZone } = options;
  const audit = new AuditService(clock);
  const models = new ModelsService({ db, clock, audit });
  const allowPrivate = options.webhooks?.allowPrivate ?? false;
  const send: SendWebhook = options.webhooks?.send ?? ((url, body, headers) => postWebhook(url, body, headers, { allowPrivate }));
  const users = new UsersService({ db, clock, audit, timeZone, onDisabled: options.onUserDisabled });
  const keys = new KeysService({ db, clock, audit, timeZone, resolveModel: (name) => models.lookup(name) });
  return {
    db,
    clock,
    timeZone,
    audit,
    users,
    keys,
    keyPolicy: new KeyPolicyService({ db, clock, audit, timeZone, listKeys: (filter, actor) => keys.list(filter, actor) }),
    leaks: new LeaksService({ db, clock, audit }),
    teams: new TeamsService({ db, clock, audit }),
    invites: new InvitesService({ db, clock, audit, users }),
    teamControls: new TeamControlsService({ db, clock, audit, timeZone, resolveModel: (name) => models.lookup(name) }),
    tokens: new TokensService({ db, clock, audit }),
    loginThrottle: new LoginThrottle({ db, clock }),
    balances: new BalancesService({ db, clock, audit, timeZone }),
    metering: new MeteringService({ db, clock, timeZone, holdTtlMs: options.holdTtlMs ?? DEFAULT_HOLD_TTL_MS }),
    models,
    plans: new PlansService({ db, clock, audit }),
    usage: new UsageService({ db, clock, timeZone, keys }),
    usageReports: new UsageReports({ db, clock, keys }),
    refusals: new RefusalsService({ db, clock, timeZone, keys }),
    alerts: new AlertsService({ db, clock, timeZone, keys }),
    keyExpiry: new KeyExpiryService({ db, clock, audit }),
    keyRotation: new KeyRotationService({ db, clock, keys, send }),
    reconcile: new ReconcileService({ db, clock, audit }),
    rollover: new RolloverService({ db, clock, timeZone }),
    storedResponses: new StoredResponsesService({ db, clock }),
    webhooks: new WebhooksService({ db, clock, audit, allowPrivate }),
    webhookDelivery: new WebhookDeliveryService({ db, clock, send, random: options.webhooks?.random }),
  };
}

export type Services = ReturnType<typeof createServices>;
