import { formatAud } from '../money.js';
import type { AuditEvent } from './audit.service.js';

/**
 * An audit row as a sentence for people (issue #15, point 13): who did what to which object, in words, with links to
 * the objects, AUD amounts and no internal field names. Pure: the names of the ids a row mentions are looked up
 * beforehand (audit-names.ts); dates stay dates so the page shows them in the viewer's time zone.
 */
export type AuditPart =
  | { kind: 'text'; text: string }
  | { kind: 'link'; text: string; href: string }
  | { kind: 'date'; date: Date };

export interface AuditSentence {
  /** Who: a person (linked), the CLI, a scheduled job, the key itself, a scanning service. */
  actor: AuditPart[];
  /** What they did, starting with a verb: "revoked the key Laptop". */
  action: AuditPart[];
  /** Where from: the address and a short browser or client name, when the door knew them. */
  from: string | null;
}

export interface NamedUser {
  email: string;
  name: string;
}

/** The objects a page of audit rows mentions; an id missing here (a deleted row) is shown as "a deleted …". */
export interface AuditNames {
  users: ReadonlyMap<string, NamedUser>;
  keys: ReadonlyMap<string, string>;
  teams: ReadonlyMap<string, string>;
  tokens: ReadonlyMap<string, string>;
  plans: ReadonlyMap<string, string>;
}

const text = (t: string): AuditPart => ({ kind: 'text', text: t });
const link = (t: string, href: string): AuditPart => ({ kind: 'link', text: t, href });
const date = (d: Date): AuditPart => ({ kind: 'date', date: d });
const aud = (micro: unknown): string => (typeof micro === 'number' ? formatAud(micro) : 'none');
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const article = (role: string) => (/^[aeiou]/.test(role) ? `an ${role}` : `a ${role}`);

/** The kinds of action the code records, grouped for the audit page's filter. */
export const AUDIT_ACTIONS = [
  'key.create', 'key.update', 'key.disable', 'key.enable', 'key.revoke', 'key.rotate', 'key.retire', 'key.expire',
  'token.create', 'token.revoke',
  'team.create', 'team.member_add', 'team.member_role', 'team.member_remove', 'team.member_budget', 'team.controls', 'team.key_policy',
  'team.invite_create', 'team.invite_revoke', 'team.invite_accept',
  'balance.credit',
  'user.create', 'user.disable', 'user.enable', 'user.set_plan', 'user.password_change', 'user.password_reset_issue',
  'user.password_reset', 'user.password_set', 'user.alert_thresholds',
  'plan.create', 'plan.update', 'model.create', 'model.update', 'installation.key_policy', 'reconcile.correct',
  'webhook.create', 'webhook.delete',
] as const;

export function describeAuditEvent(e: AuditEvent, names: AuditNames): AuditSentence {
  const d = e.details ?? {};
  const ref = refs(names);
  const self = e.actorId !== null && e.actorId === e.targetId;
  const key = () => ref.key(e.targetId);
  const team = () => ref.team(e.targetId);
  const user = (id: unknown = e.targetId) => ref.user(str(id));
  const describe: Record<string, () => AuditPart[]> = {
    'key.create': () => [
      text('created the key '), key(),
      ...(str(d.teamId) ? [text(' for the team '), ref.team(str(d.teamId))] : []),
      ...(num(d.spendLimitMicro) !== null ? [text(`, spending limit ${aud(d.spendLimitMicro)}`)] : []),
      ...(str(d.expiresAt) ? [text(', expiring '), date(new Date(d.expiresAt as string))] : []),
    ],
    'key.update': () => [text('changed the key '), key(), ...listOf(keyChanges(d))],
    'key.disable': () => [text('paused the key '), key()],
    'key.enable': () => [text('resumed the key '), key()],
    'key.revoke': () => d.leaked
      ? [text('revoked the key '), key(), text(` after ${str(d.reportedBy) ?? 'a scanning service'} reported it leaked${str(d.url) ? ` at ${d.url as string}` : ''}`)]
      : [text('revoked the key '), key(), ...(d.asInstallationAdmin ? [text(' as installation admin')] : [])],
    'key.rotate': () => [
      text('rotated the key '), key(), text(' into '), ref.key(str(d.successorId)),
      text(num(d.gracePeriodSeconds) ? `; the old key works ${duration(num(d.gracePeriodSeconds)!)} more` : '; the old key stopped at once'),
    ],
    'key.retire': () => [text('retired the key '), key(), text(' at the end of its rotation grace period')],
    'key.expire': () => [text('marked the key '), key(), text(' expired')],
    'token.create': () => [text('created the management token '), ref.token(e.targetId), ...(str(d.ownerId) ? [text(' for '), user(d.ownerId)] : [])],
    'token.revoke': () => [text('revoked the management token '), ref.token(e.targetId), ...(d.leaked ? [text(` after ${str(d.reportedBy) ?? 'a scanning service'} reported it leaked`)] : [])],
    'team.create': () => [text('created the team '), team()],
    'team.member_add': () => [text('added '), user(d.userId), text(' to '), team(), text(` as ${article(String(d.role))}`)],
    'team.member_role': () => [
      text('changed the role of '), user(d.userId), text(' in '), team(), text(` from ${String(d.from)} to ${String(d.to)}`),
      ...(num(d.keysRevoked) ? [text(`; ${plural(num(d.keysRevoked)!, 'team key')} revoked`)] : []),
    ],
    'team.member_remove': () => [
      ...(e.actorId !== null && d.userId === e.actorId ? [text('left the team '), team()] : [text('removed '), user(d.userId), text(' from '), team()]),
      ...(num(d.keysRevoked) ? [text(`; ${plural(num(d.keysRevoked)!, 'team key')} revoked`)] : []),
    ],
    'team.member_budget': () => num(d.budgetMicro) === null
      ? [text('removed the monthly budget of '), user(d.userId), text(' in '), team()]
      : [text('set the monthly budget of '), user(d.userId), text(' in '), team(), text(` to ${aud(d.budgetMicro)}`)],
    'team.controls': () => [text('changed the key controls of '), team(), ...listOf(teamControlChanges(d))],
    'team.key_policy': () => [text('changed the guard-rails on new keys of '), team(), ...listOf(keyPolicyChanges(d))],
    'team.invite_create': () => [text(`invited ${String(d.email)} to `), team(), text(` as ${article(String(d.role))}`)],
    'team.invite_revoke': () => [text(`withdrew the invitation of ${String(d.email)} to `), team()],
    'team.invite_accept': () => [text('accepted the invitation to '), team(), text(` and joined as ${article(String(d.role))}`)],
    'balance.credit': () => [
      text(`topped up ${e.targetType === 'team' ? 'the team balance of ' : 'the prepaid balance of '}`),
      e.targetType === 'team' ? team() : user(), text(` by ${aud(d.amountMicro)}`), ...(str(d.note) ? [text(` (“${d.note as string}”)`)] : []),
    ],
    'user.create': () => self
      ? [text('created their account'), ...(str(d.plan) ? [text(` on the ${d.plan as string} plan`)] : [])]
      : [text(d.role === 'admin' ? 'created the installation admin ' : 'created the user '), user(), ...(str(d.plan) ? [text(` on the ${d.plan as string} plan`)] : [])],
    'user.disable': () => [text('disabled '), user()],
    'user.enable': () => [text('enabled '), user()],
    'user.set_plan': () => [text('moved '), user(), text(' from the plan '), ref.plan(str(d.from)), text(' to '), ref.plan(str(d.to))],
    'user.password_change': () => [text('changed their password')],
    'user.password_reset_issue': () => [text('issued a password reset link for '), user(), ...(str(d.expiresAt) ? [text(', valid until '), date(new Date(d.expiresAt as string))] : [])],
    'user.password_reset': () => [text('set a new password with a reset link')],
    'user.password_set': () => [text('set the password of '), user()],
    'user.alert_thresholds': () => [text(thresholdSentence(d.alertThresholds))],
    'plan.create': () => [text('created the plan '), ref.plan(e.targetId)],
    'plan.update': () => [text('changed the plan '), ref.plan(e.targetId), ...listOf(planChanges(d))],
    'model.create': () => [text('added the model '), link(e.targetId ?? 'unknown', '/admin/models')],
    'model.update': () => [text('changed the model '), link(e.targetId ?? 'unknown', '/admin/models'), ...listOf(modelChanges(d))],
    'installation.key_policy': () => [text('changed the installation’s guard-rails on new keys'), ...listOf(keyPolicyChanges(d))],
    'webhook.create': () => [
      text('added the webhook endpoint '), link(str(d.url) ?? 'unknown', `/webhooks/${encodeURIComponent(e.targetId ?? '')}`),
      ...(str(d.teamId) ? [text(' for the team '), ref.team(d.teamId as string)] : []),
      ...(Array.isArray(d.events) && d.events.length > 0 ? [text(` for ${d.events.join(', ')}`)] : []),
    ],
    'webhook.delete': () => [text(`deleted the webhook endpoint ${str(d.url) ?? ''}`.trimEnd())],
    'reconcile.correct': () => [
      text('corrected the cached totals of '), targetRef(e, ref), text(' to match the ledger'), ...listOf(corrections(d.corrections)),
    ],
  };
  const action = describe[e.action]?.() ?? [text(`${e.action.replace(/[._]/g, ' ')} `), targetRef(e, ref)];
  return { actor: actorParts(e, ref), action, from: fromText(e) };
}

type Refs = ReturnType<typeof refs>;

function refs(names: AuditNames) {
  const named = (map: ReadonlyMap<string, string>, what: string, href: (id: string) => string | null) => (id: string | null): AuditPart => {
    const name = id ? map.get(id) : undefined;
    if (!id || name === undefined) return text(`a deleted ${what}`);
    const to = href(id);
    return to ? link(name, to) : text(name);
  };
  return {
    key: named(names.keys, 'key', (id) => `/keys/${id}`),
    team: named(names.teams, 'team', (id) => `/teams/${id}`),
    token: named(names.tokens, 'token', () => null),
    plan: named(names.plans, 'plan', () => '/admin/plans'),
    user: (id: string | null): AuditPart => {
      const u = id ? names.users.get(id) : undefined;
      if (!id || !u) return text('a deleted user');
      return link(u.name && u.name !== u.email ? `${u.name} (${u.email})` : u.email, `/admin/audit?actor=user:${encodeURIComponent(id)}`);
    },
  };
}

function targetRef(e: AuditEvent, ref: Refs): AuditPart {
  switch (e.targetType) {
    case 'key': return ref.key(e.targetId);
    case 'team': return ref.team(e.targetId);
    case 'user': return ref.user(e.targetId);
    case 'token': return ref.token(e.targetId);
    case 'plan': return ref.plan(e.targetId);
    default: return text(e.targetId ? `${e.targetType} ${e.targetId}` : e.targetType);
  }
}

const ACTOR_KINDS: Record<string, string> = {
  cli: 'The command line (an operator)',
  system: 'A scheduled job',
  key: 'The key itself (its holder)',
  scanner: 'A secret scanning service',
};

function actorParts(e: AuditEvent, ref: Refs): AuditPart[] {
  if (e.actorKind === 'user' || e.actorKind === 'token') {
    return [ref.user(e.actorId), ...(e.actorKind === 'token' ? [text(' with a management token')] : [])];
  }
  return [text(ACTOR_KINDS[e.actorKind] ?? e.actorKind)];
}

/** The address and a short client name, not the whole user agent string. */
function fromText(e: AuditEvent): string | null {
  const client = e.userAgent ? clientName(e.userAgent) : null;
  if (!e.ip && !client) return null;
  return [e.ip, client].filter(Boolean).join(' · ');
}

export function clientName(userAgent: string): string {
  const browsers: Array<[RegExp, string]> = [[/Edg\//, 'Edge'], [/Firefox\//, 'Firefox'], [/Chrom(e|ium)\//, 'Chrome'], [/Safari\//, 'Safari']];
  for (const [pattern, name] of browsers) if (pattern.test(userAgent)) return name;
  return userAgent.split(/[\s(]/)[0]!.slice(0, 40);
}

function listOf(changes: string[]): AuditPart[] {
  return changes.length ? [text(`: ${changes.join('; ')}`)] : [];
}

function keyChanges(d: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (str(d.name)) out.push(`renamed to “${d.name as string}”`);
  if ('spendLimitMicro' in d) out.push(`spending limit ${aud(d.from)} → ${aud(d.spendLimitMicro)}`);
  if (d.status === 'limit_reached') out.push('now at its limit');
  if (d.controls && typeof d.controls === 'object') out.push(`controls (${Object.keys(d.controls).map(humanField).join(', ')})`);
  if (Array.isArray(d.tags)) out.push(d.tags.length ? `tags ${d.tags.join(', ')}` : 'tags removed');
  return out;
}

function teamControlChanges(d: Record<string, unknown>): string[] {
  return Object.entries(d).map(([field, value]) => `${humanField(field)} ${value === null ? 'removed' : `set to ${String(value)}`}`);
}

/** Guard-rail rows carry the changed columns (KeyPolicyService): each rule as it now stands. */
const KEY_POLICY_WORDS: Record<string, (value: unknown) => string> = {
  key_require_limit: (on) => (on ? 'a spending limit required' : 'no spending limit required'),
  key_max_expiry_days: (days) => (num(days) === null ? 'no expiry required' : `an expiry within ${plural(num(days)!, 'day')} required`),
  key_unique_names: (on) => (on ? 'names unique per owner' : 'names need not be unique'),
  key_max_age_days: (days) => (num(days) === null ? 'no maximum key age' : `keys due for rotation after ${plural(num(days)!, 'day')}`),
};

function keyPolicyChanges(d: Record<string, unknown>): string[] {
  return Object.entries(d).map(([column, value]) => KEY_POLICY_WORDS[column]?.(value) ?? `${humanField(column.replace(/^key_/, ''))} set to ${String(value)}`);
}

function planChanges(d: Record<string, unknown>): string[] {
  const before = (d.before ?? {}) as Record<string, unknown>;
  const after = (d.after ?? {}) as Record<string, unknown>;
  const money = new Set(['includedMicro', 'overageCapMicro']);
  return Object.keys(after)
    .filter((k) => k !== 'id' && JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => `${humanField(k)} ${money.has(k) ? `${aud(before[k])} → ${aud(after[k])}` : `${String(before[k])} → ${String(after[k])}`}`);
}

/** model.update rows carry the new columns (snake_case) and the previous entry (camelCase). */
const MODEL_PRICES: Array<[column: string, previous: string, label: string]> = [
  ['input_micro_per_mtok', 'inputMicroPerMTok', 'input'],
  ['output_micro_per_mtok', 'outputMicroPerMTok', 'output'],
  ['cached_input_micro_per_mtok', 'cachedInputMicroPerMTok', 'cached input'],
  ['cache_write_micro_per_mtok', 'cacheWriteMicroPerMTok', 'cache write (5 min)'],
  ['cache_write_1h_micro_per_mtok', 'cacheWrite1hMicroPerMTok', 'cache write (1 h)'],
];

function modelChanges(d: Record<string, unknown>): string[] {
  const previous = (d.previous ?? {}) as Record<string, unknown>;
  const out = MODEL_PRICES
    .filter(([column, prev]) => column in d && d[column] !== previous[prev])
    .map(([column, prev, label]) => `${label} ${aud(previous[prev])} → ${aud(d[column])} per million tokens`);
  if ('enabled' in d && Boolean(d.enabled) !== Boolean(previous.enabled)) out.push(d.enabled ? 'enabled' : 'disabled');
  return out;
}

function corrections(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((c: Record<string, unknown>) => {
    const field = String(c.field);
    const show = field.endsWith('_micro') ? aud : (v: unknown) => String(v);
    return `${humanField(field)} ${show(c.cached)} → ${show(c.actual)}`;
  });
}

function thresholdSentence(list: unknown): string {
  if (list === null || list === undefined) return 'reset their spend alerts to the defaults';
  if (Array.isArray(list) && list.length === 0) return 'turned their spend alerts off';
  return `set their spend alerts at ${(list as unknown[]).map((p) => `${String(p)}%`).join(', ')}`;
}

/** spendLimitMicro, default_rpm_limit → "spend limit", "default rpm limit". */
function humanField(field: string): string {
  return field
    .replace(/_?micro$|Micro$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/_/g, ' ')
    .toLowerCase();
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return plural(seconds / 86_400, 'day');
  if (seconds % 3600 === 0) return plural(seconds / 3600, 'hour');
  if (seconds % 60 === 0) return plural(seconds / 60, 'minute');
  return plural(seconds, 'second');
}
