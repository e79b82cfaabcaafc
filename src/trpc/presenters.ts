import type { ViolatingKey } from '../domain/keys/key-policy.service.js';
import type { MemberBudget, TeamControls } from '../domain/teams/team-controls.service.js';
import type { Plan } from '../domain/accounts/plans.js';
import type { User } from '../domain/accounts/users.service.js';
import type { AuditEvent } from '../domain/audit/audit.service.js';
import type { PersonalBalance } from '../domain/billing/balances.service.js';
import { retiresAt } from '../domain/keys/attention.js';
import type { ApiKey } from '../domain/keys/key.js';
import type { CatalogListing } from '../domain/models/models.service.js';
import type { TokenUsage } from '../domain/models/pricing.js';
import { microToAud, type Micro } from '../domain/money.js';
import type { Team, TeamMember } from '../domain/teams/teams.service.js';
import type { TeamInvite } from '../domain/teams/invites.service.js';
import type { ManagementToken } from '../domain/tokens/tokens.service.js';
import type { WebhookDelivery, WebhookEndpoint } from '../domain/webhooks/webhooks.service.js';
import type { KeyUsage, UsageEvent, UsageTotals } from '../domain/usage/usage.service.js';
import type { Breakdown, InstallationSummary } from '../domain/usage/usage-reports.js';

/**
 * Domain values → the API's wire shapes (SPEC §7): money as AUD decimal strings, timestamps as ISO-8601, ids as
 * strings. No secret is ever part of these shapes; create and rotate add the secret beside them, once.
 */
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
const audOrNull = (m: Micro | null): string | null => (m === null ? null : microToAud(m));

export function keyDto(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    last4: k.last4,
    status: k.status,
    spendAud: microToAud(k.spendMicro),
    spendLimitAud: audOrNull(k.spendLimitMicro),
    expiresAt: iso(k.expiresAt),
    teamId: k.teamId,
    ownerId: k.ownerId,
    requestCount: k.requestCount,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: iso(k.lastUsedAt),
    // A rotated key retires silently at the end of its grace period; that instant is when it was revoked.
    revokedAt: iso(k.revokedAt ?? (k.status === 'revoked' ? k.retireAt : null)),
    // Rotated: the key that replaced it; while its grace period runs, retiresAt is when it stops working.
    successorId: k.rotatedToId,
    retiresAt: iso(retiresAt(k)),
    limitReset: k.limitReset,
    periodSpendAud: k.limitReset ? microToAud(k.periodSpendMicro) : null,
    nextResetAt: iso(k.nextResetAt),
    allowedModels: k.allowedModels,
    rpmLimit: k.rpmLimit,
    tpmLimit: k.tpmLimit,
    maxParallel: k.maxParallel,
    tags: k.tags,
    disabledAt: iso(k.disabledAt),
    alertThresholds: k.alertThresholds,
    // When the maximum key age in force makes the key due for rotation (null: no such rule, or not a working key).
    rotateBy: iso(k.rotateBy),
    autoRotate: k.autoRotate,
  };
}
export type KeyDto = ReturnType<typeof keyDto>;

export function teamControlsDto(c: TeamControls) {
  return {
    allowedModels: c.allowedModels, defaultRpmLimit: c.defaultRpmLimit, defaultTpmLimit: c.defaultTpmLimit, defaultMaxParallel: c.defaultMaxParallel,
    alertThresholds: c.alertThresholds,
  };
}

export function memberBudgetDto(m: MemberBudget) {
  return { userId: m.userId, budgetAud: audOrNull(m.budgetMicro), spentAud: microToAud(m.spentMicro), heldAud: microToAud(m.heldMicro), resetsAt: m.periodEnd.toISOString() };
}

export function teamDto(t: Team) {
  return { id: t.id, name: t.name, balanceAud: microToAud(t.balanceMicro), role: t.role };
}

export function memberDto(m: TeamMember) {
  return { userId: m.userId, email: m.email, name: m.name, role: m.role };
}

export function inviteDto(i: TeamInvite) {
  return { id: i.id, teamId: i.teamId, email: i.email, role: i.role, expiresAt: i.expiresAt.toISOString(), createdAt: i.createdAt.toISOString() };
}

export function userDto(u: User) {
  return { id: u.id, email: u.email, name: u.name, role: u.role, disabled: u.disabled, planId: u.planId, createdAt: u.createdAt.toISOString() };
}

export function planDto(p: Plan) {
  return {
    id: p.id,
    name: p.name,
    includedAud: microToAud(p.includedMicro),
    overageAllowed: p.overageAllowed,
    overageCapAud: audOrNull(p.overageCapMicro),
    isDefault: p.isDefault,
  };
}

export function balanceDto(b: PersonalBalance) {
  return {
    includedAud: microToAud(b.includedMicro),
    includedUsedAud: microToAud(b.includedUsedMicro),
    prepaidAud: microToAud(b.prepaidMicro),
    overageUsedAud: microToAud(b.overageUsedMicro),
    overageCapAud: audOrNull(b.overageCapMicro),
    periodStart: b.periodStart.toISOString(),
    periodEnd: b.periodEnd.toISOString(),
    alertThresholds: b.alertThresholds,
  };
}

export function tokenDto(t: ManagementToken) {
  return {
    id: t.id,
    name: t.name,
    last4: t.last4,
    status: t.status,
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    lastUsedAt: iso(t.lastUsedAt),
    createdAt: t.createdAt.toISOString(),
  };
}

export function modelDto(m: CatalogListing) {
  return {
    id: m.id,
    provider: m.provider,
    upstreamModel: m.upstreamModel,
    inputAudPerMTok: microToAud(m.inputMicroPerMTok),
    outputAudPerMTok: microToAud(m.outputMicroPerMTok),
    // null: billed at the input price.
    cachedInputAudPerMTok: audOrNull(m.cachedInputMicroPerMTok),
    cacheWriteAudPerMTok: audOrNull(m.cacheWriteMicroPerMTok),
    cacheWrite1hAudPerMTok: audOrNull(m.cacheWrite1hMicroPerMTok),
    enabled: m.enabled,
    aliases: m.aliases,
  };
}

/** Token counts by kind (`inputTokens` is the uncached input; `reasoningTokens` is part of `outputTokens`). */
function tokensDto(t: TokenUsage) {
  return {
    inputTokens: t.inputTokens,
    cachedInputTokens: t.cachedInputTokens,
    cacheWrite5mTokens: t.cacheWrite5mTokens,
    cacheWrite1hTokens: t.cacheWrite1hTokens,
    outputTokens: t.outputTokens,
    reasoningTokens: t.reasoningTokens,
  };
}

function totalsDto(t: UsageTotals) {
  return { requests: t.requests, ...tokensDto(t), costAud: microToAud(t.costMicro) };
}

export function keyUsageDto(u: KeyUsage) {
  return {
    keyId: u.keyId,
    from: u.from.toISOString(),
    to: u.to.toISOString(),
    totals: totalsDto(u.totals),
    byDay: u.byDay.map((d) => ({ day: d.day, ...totalsDto(d) })),
    byModel: u.byModel.map((m) => ({ model: m.model, ...totalsDto(m) })),
  };
}

function breakdownDto(b: Breakdown) {
  return { id: b.id, label: b.label, requests: b.requests, inputTokens: b.inputTokens, outputTokens: b.outputTokens, costAud: microToAud(b.costMicro) };
}

export function installationSummaryDto(s: InstallationSummary) {
  return {
    from: s.from.toISOString(),
    to: s.to.toISOString(),
    total: { requests: s.total.requests, inputTokens: s.total.inputTokens, outputTokens: s.total.outputTokens, costAud: microToAud(s.total.costMicro) },
    bucketDays: s.bucketDays,
    over: s.over.map((d) => ({ day: d.date, requests: d.requests, costAud: microToAud(d.costMicro) })),
    byModel: s.byModel.map(breakdownDto),
    byProvider: s.byProvider.map(breakdownDto),
    /** `id: null` is the personal keys. */
    byTeam: s.byTeam.map((b) => ({ ...breakdownDto(b), id: b.id || null, label: b.label || null })),
    byUser: s.byUser.map(breakdownDto),
  };
}

export function usageEventDto(e: UsageEvent) {
  return {
    id: e.id,
    requestId: e.requestId,
    keyId: e.keyId,
    userId: e.userId,
    teamId: e.teamId,
    model: e.model,
    provider: e.provider,
    endpoint: e.endpoint,
    ...tokensDto(e),
    costAud: microToAud(e.costMicro),
    split: {
      includedAud: microToAud(e.split.includedMicro),
      prepaidAud: microToAud(e.split.prepaidMicro),
      overageAud: microToAud(e.split.overageMicro),
      teamAud: microToAud(e.split.teamMicro),
    },
    outcome: e.outcome,
    estimated: e.estimated,
    httpStatus: e.httpStatus,
    latencyMs: e.latencyMs,
    streamed: e.streamed,
    startedAt: e.startedAt.toISOString(),
    createdAt: e.createdAt.toISOString(),
  };
}

export function auditDto(e: AuditEvent) {
  return {
    id: e.id,
    actorId: e.actorId,
    actorKind: e.actorKind,
    action: e.action,
    targetType: e.targetType,
    targetId: e.targetId,
    details: e.details,
    ip: e.ip,
    userAgent: e.userAgent,
    createdAt: e.createdAt.toISOString(),
  };
}

export function webhookDto(w: WebhookEndpoint) {
  return { id: w.id, url: w.url, events: w.events, teamId: w.teamId, createdAt: w.createdAt.toISOString() };
}

export function webhookDeliveryDto(d: WebhookDelivery) {
  return {
    id: d.id, eventId: d.eventId, eventType: d.eventType, status: d.status, attempts: d.attempts, lastStatusCode: d.lastStatusCode,
    lastError: d.lastError, nextAttemptAt: iso(d.nextAttemptAt), deliveredAt: iso(d.deliveredAt), createdAt: d.createdAt.toISOString(),
  };
}

export function violatingKeyDto(v: ViolatingKey) {
  return { key: keyDto(v.key), violations: v.violations.map((x) => ({ rule: x.rule, field: x.field, message: x.message })) };
}
