import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/domain/audit/audit.service.js';
import { AUDIT_ACTIONS, clientName, describeAuditEvent, type AuditNames, type AuditPart } from '../../src/domain/audit/describe-event.js';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** Every action literal passed to audit.record anywhere in src/ (the grep the formatter must keep up with). */
function recordedActions(): Set<string> {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (file.endsWith('.ts')) {
        const source = fs.readFileSync(file, 'utf8');
        // The action is the third argument: a literal (or two, in a ternary) within the call's first lines, before
        // the statement ends (a later statement's literals, such as an event type, are not actions).
        for (const call of source.matchAll(/audit\.record\(([^;]{0,200})/g)) for (const [, action] of call[1]!.matchAll(/'([a-z]+\.[a-z_]+)'/g)) found.add(action!);
      }
    }
  };
  walk(SRC);
  return found;
}

const names: AuditNames = {
  users: new Map([['u-ada', { email: 'ada@example.com', name: 'Ada' }], ['u-bob', { email: 'bob@example.com', name: 'bob@example.com' }]]),
  keys: new Map([['k-1', 'Laptop'], ['k-2', 'Laptop (rotated)']]),
  teams: new Map([['t-1', 'Platform']]),
  tokens: new Map([['tok-1', 'CI deploy']]),
  plans: new Map([['p-free', 'Free'], ['p-pro', 'Pro']]),
};

function event(action: string, targetType: string, targetId: string | null, details: Record<string, unknown> | null = null, actor: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: '1', actorId: 'u-ada', actorKind: 'user', action, targetType, targetId, details, ip: '203.0.113.9',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36', createdAt: new Date('2026-12-02T03:00:00Z'), ...actor,
  };
}

/** The sentence as plain text, links as [text](href), dates as ISO. */
function say(e: AuditEvent): string {
  const flat = (parts: AuditPart[]) => parts.map((p) => (p.kind === 'link' ? `[${p.text}](${p.href})` : p.kind === 'date' ? p.date.toISOString() : p.text)).join('');
  const s = describeAuditEvent(e, names);
  return `${flat(s.actor)} ${flat(s.action)}`;
}

const ADA = '[Ada (ada@example.com)](/admin/audit?actor=user:u-ada)';
const BOB = '[bob@example.com](/admin/audit?actor=user:u-bob)';

/** One row per action the code records, as the service writes it, and the sentence it must read as. */
const CASES: Array<[AuditEvent, string]> = [
  [event('key.create', 'key', 'k-1', { name: 'Laptop', teamId: 't-1', spendLimitMicro: 25_000_000, expiresAt: '2027-01-01T00:00:00.000Z' }),
    `${ADA} created the key [Laptop](/keys/k-1) for the team [Platform](/teams/t-1), spending limit A$25.00, expiring 2027-01-01T00:00:00.000Z`],
  [event('key.update', 'key', 'k-1', { name: 'Work laptop', spendLimitMicro: 5_000_000, from: null, tags: ['ci'] }),
    `${ADA} changed the key [Laptop](/keys/k-1): renamed to “Work laptop”; spending limit none → A$5.00; tags ci`],
  [event('key.disable', 'key', 'k-1', { status: 'disabled' }), `${ADA} paused the key [Laptop](/keys/k-1)`],
  [event('key.enable', 'key', 'k-1', { status: 'active' }), `${ADA} resumed the key [Laptop](/keys/k-1)`],
  [event('key.revoke', 'key', 'k-1', { asInstallationAdmin: true }), `${ADA} revoked the key [Laptop](/keys/k-1) as installation admin`],
  [event('key.rotate', 'key', 'k-1', { successorId: 'k-2', gracePeriodSeconds: 86_400 }),
    `${ADA} rotated the key [Laptop](/keys/k-1) into [Laptop (rotated)](/keys/k-2); the old key works 1 day more`],
  [event('key.retire', 'key', 'k-1', null, { actorId: null, actorKind: 'system', ip: null, userAgent: null }),
    'A scheduled job retired the key [Laptop](/keys/k-1) at the end of its rotation grace period'],
  [event('key.expire', 'key', 'k-1', null, { actorId: null, actorKind: 'system' }), 'A scheduled job marked the key [Laptop](/keys/k-1) expired'],
  [event('token.create', 'token', 'tok-1', { name: 'CI deploy', ownerId: 'u-bob' }, { actorId: 'cli', actorKind: 'cli' }),
    `The command line (an operator) created the management token CI deploy for ${BOB}`],
  [event('token.revoke', 'token', 'tok-1', null, { actorKind: 'token' }), `${ADA} with a management token revoked the management token CI deploy`],
  [event('team.create', 'team', 't-1', { name: 'Platform' }), `${ADA} created the team [Platform](/teams/t-1)`],
  [event('team.member_add', 'team', 't-1', { userId: 'u-bob', role: 'admin' }), `${ADA} added ${BOB} to [Platform](/teams/t-1) as an admin`],
  [event('team.member_role', 'team', 't-1', { userId: 'u-bob', from: 'member', to: 'viewer', keysRevoked: 2 }),
    `${ADA} changed the role of ${BOB} in [Platform](/teams/t-1) from member to viewer; 2 team keys revoked`],
  [event('team.member_remove', 'team', 't-1', { userId: 'u-bob', keysRevoked: 1 }), `${ADA} removed ${BOB} from [Platform](/teams/t-1); 1 team key revoked`],
  [event('team.member_remove', 'team', 't-1', { userId: 'u-ada', keysRevoked: 0 }), `${ADA} left the team [Platform](/teams/t-1)`],
  [event('team.member_budget', 'team', 't-1', { userId: 'u-bob', budgetMicro: 40_000_000 }), `${ADA} set the monthly budget of ${BOB} in [Platform](/teams/t-1) to A$40.00`],
  [event('team.member_budget', 'team', 't-1', { userId: 'u-bob', budgetMicro: null }), `${ADA} removed the monthly budget of ${BOB} in [Platform](/teams/t-1)`],
  [event('team.controls', 'team', 't-1', { default_rpm_limit: 60, default_max_parallel: null }),
    `${ADA} changed the key controls of [Platform](/teams/t-1): default rpm limit set to 60; default max parallel removed`],
  [event('team.key_policy', 'team', 't-1', { key_require_limit: true, key_max_expiry_days: 30, key_unique_names: false }),
    `${ADA} changed the guard-rails on new keys of [Platform](/teams/t-1): a spending limit required; an expiry within 30 days required; names need not be unique`],
  [event('webhook.create', 'webhook', 'w-1', { url: 'https://hooks.example.com/mb', events: ['key.revoked', 'key.expiring'], teamId: 't-1' }),
    `${ADA} added the webhook endpoint [https://hooks.example.com/mb](/webhooks/w-1) for the team [Platform](/teams/t-1) for key.revoked, key.expiring`],
  [event('webhook.delete', 'webhook', 'w-1', { url: 'https://hooks.example.com/mb' }), `${ADA} deleted the webhook endpoint https://hooks.example.com/mb`],
  [event('installation.key_policy', 'installation', 'installation', { key_require_limit: false, key_max_expiry_days: null, key_unique_names: true }),
    `${ADA} changed the installation’s guard-rails on new keys: no spending limit required; no expiry required; names unique per owner`],
  [event('team.invite_create', 'team', 't-1', { inviteId: 'i-1', email: 'cy@example.com', role: 'member', expiresAt: '2026-12-09T03:00:00.000Z' }),
    `${ADA} invited cy@example.com to [Platform](/teams/t-1) as a member`],
  [event('team.invite_revoke', 'team', 't-1', { inviteId: 'i-1', email: 'cy@example.com' }), `${ADA} withdrew the invitation of cy@example.com to [Platform](/teams/t-1)`],
  [event('team.invite_accept', 'team', 't-1', { inviteId: 'i-1', userId: 'u-bob', role: 'viewer' }, { actorId: 'u-bob' }),
    `${BOB} accepted the invitation to [Platform](/teams/t-1) and joined as a viewer`],
  [event('balance.credit', 'user', 'u-bob', { amountMicro: 12_500_000, note: 'invoice 42' }), `${ADA} topped up the prepaid balance of ${BOB} by A$12.50 (“invoice 42”)`],
  [event('balance.credit', 'team', 't-1', { amountMicro: 100_000_000, note: null }), `${ADA} topped up the team balance of [Platform](/teams/t-1) by A$100.00`],
  [event('user.create', 'user', 'u-bob', { email: 'bob@example.com', role: 'user', plan: 'Free' }), `${ADA} created the user ${BOB} on the Free plan`],
  [event('user.create', 'user', 'u-bob', { email: 'bob@example.com', role: 'user', plan: 'Free' }, { actorId: 'u-bob' }), `${BOB} created their account on the Free plan`],
  [event('user.disable', 'user', 'u-bob'), `${ADA} disabled ${BOB}`],
  [event('user.enable', 'user', 'u-bob'), `${ADA} enabled ${BOB}`],
  [event('user.set_plan', 'user', 'u-bob', { from: 'p-free', to: 'p-pro' }), `${ADA} moved ${BOB} from the plan [Free](/admin/plans) to [Pro](/admin/plans)`],
  [event('user.password_change', 'user', 'u-ada'), `${ADA} changed their password`],
  [event('user.password_reset_issue', 'user', 'u-bob', { expiresAt: '2026-12-03T03:00:00.000Z' }), `${ADA} issued a password reset link for ${BOB}, valid until 2026-12-03T03:00:00.000Z`],
  [event('user.password_reset', 'user', 'u-bob', null, { actorId: 'u-bob' }), `${BOB} set a new password with a reset link`],
  [event('user.password_set', 'user', 'u-bob', null, { actorId: 'cli', actorKind: 'cli' }), `The command line (an operator) set the password of ${BOB}`],
  [event('user.alert_thresholds', 'user', 'u-ada', { alertThresholds: [50, 90] }), `${ADA} set their spend alerts at 50%, 90%`],
  [event('user.alert_thresholds', 'user', 'u-ada', { alertThresholds: [] }), `${ADA} turned their spend alerts off`],
  [event('plan.create', 'plan', 'p-pro', { name: 'Pro', includedMicro: 20_000_000 }), `${ADA} created the plan [Pro](/admin/plans)`],
  [event('plan.update', 'plan', 'p-pro', { before: { id: 'p-pro', name: 'Pro', includedMicro: 20_000_000 }, after: { id: 'p-pro', name: 'Pro', includedMicro: 30_000_000 } }),
    `${ADA} changed the plan [Pro](/admin/plans): included A$20.00 → A$30.00`],
  [event('model.create', 'model', 'gpt-4o', { provider: 'openai', input_micro_per_mtok: 3_750_000 }), `${ADA} added the model [gpt-4o](/admin/models)`],
  [event('model.update', 'model', 'gpt-4o', { input_micro_per_mtok: 4_000_000, output_micro_per_mtok: 15_000_000, enabled: false, previous: { inputMicroPerMTok: 3_750_000, outputMicroPerMTok: 15_000_000, enabled: true } }),
    `${ADA} changed the model [gpt-4o](/admin/models): input A$3.75 → A$4.00 per million tokens; disabled`],
  [event('reconcile.correct', 'key', 'k-1', { corrections: [{ field: 'spend_micro', cached: 1_000_000, actual: 1_200_000, difference: 200_000 }] }, { actorId: null, actorKind: 'system' }),
    'A scheduled job corrected the cached totals of [Laptop](/keys/k-1) to match the ledger: spend A$1.00 → A$1.20'],
];

describe('audit rows as sentences (issue #15, point 13)', () => {
  it('knows every action the code records', () => {
    const recorded = recordedActions();
    expect(recorded.size).toBeGreaterThan(25);
    expect([...recorded].filter((a) => !(AUDIT_ACTIONS as readonly string[]).includes(a))).toEqual([]);
    const tested = new Set(CASES.map(([e]) => e.action));
    expect([...recorded].filter((a) => !tested.has(a))).toEqual([]);
  });

  it.each(CASES.map(([e, expected]) => [e.action, e, expected] as const))('%s reads as a sentence', (_action, e, expected) => {
    expect(say(e)).toBe(expected);
  });

  it('never shows micro-AUD, null or raw field names', () => {
    for (const [e] of CASES) {
      const sentence = say(e);
      expect(sentence).not.toMatch(/null|undefined|Micro|_micro|\[object|\d{7,}/);
    }
  });

  it('says "a deleted …" for objects that no longer exist', () => {
    expect(say(event('key.revoke', 'key', 'k-gone'))).toBe(`${ADA} revoked the key a deleted key`);
    expect(say(event('team.member_add', 'team', 't-1', { userId: 'u-gone', role: 'member' }, { actorId: 'u-gone' }))).toBe('a deleted user added a deleted user to [Platform](/teams/t-1) as a member');
  });

  it('names the key itself and scanning services as actors, and says where a leak was reported', () => {
    expect(say(event('key.revoke', 'key', 'k-1', null, { actorId: null, actorKind: 'key' }))).toBe('The key itself (its holder) revoked the key [Laptop](/keys/k-1)');
    expect(say(event('key.revoke', 'key', 'k-1', { leaked: true, reportedBy: 'github', url: 'https://github.com/x/y' }, { actorId: null, actorKind: 'scanner' })))
      .toBe('A secret scanning service revoked the key [Laptop](/keys/k-1) after github reported it leaked at https://github.com/x/y');
  });

  it('falls back to words for an action it does not know', () => {
    expect(say(event('key.frobnicate', 'key', 'k-1'))).toBe(`${ADA} key frobnicate [Laptop](/keys/k-1)`);
  });

  it('says where from as the address and a short client name', () => {
    expect(describeAuditEvent(event('user.disable', 'user', 'u-bob'), names).from).toBe('203.0.113.9 · Chrome');
    expect(describeAuditEvent(event('user.disable', 'user', 'u-bob', null, { ip: null, userAgent: null }), names).from).toBeNull();
    expect(clientName('modelbridge-client/1.0 (node)')).toBe('modelbridge-client/1.0');
  });
});
