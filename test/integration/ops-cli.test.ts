import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

// Each test starts real CLI processes (tsx compiles on start): generous time when the machine is busy.
describe(`CLI: jobs:run and credit (${dialect})`, { timeout: 120_000 }, () => {
  let t: TestDb;
  let services: Services;
  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock: systemClock, timeZone: 'Australia/Sydney' });
  });
  afterAll(async () => t.destroy());

  /** `npm run cli -- <args>` against this file's database, as an operator would run it. */
  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = { ...process.env, LOG_LEVEL: 'info', DATABASE_URL: t.url ?? '', ...(t.sqlitePath && { SQLITE_PATH: t.sqlitePath }) };
    return new Promise((resolve) => {
      execFile(TSX, ['src/cli.ts', ...args], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  it('jobs:run all runs every job once and prints one line per job', async () => {
    const owner = await makeUser(services);
    const { key } = await makeKey(services, owner, { expiresAt: new Date(Date.now() + 60_000) });
    await t.db('api_keys').where({ id: key.id }).update({ expires_at: new Date(Date.now() - 1000) });

    const { code, stdout, stderr } = await cli('jobs:run', 'all');
    expect(code).toBe(0);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatch(/^expire-keys: ok — 1 expired, 0 retired after rotation \(\d+ ms\)$/);
    expect(lines[1]).toMatch(/^release-holds: ok — 0 released, 0 already settled/);
    expect(lines[2]).toMatch(/^reconcile: ok — 0 drifts corrected/);
    expect(lines[3]).toMatch(/^rollover: ok — 0 balances rolled/);
    expect(lines[4]).toMatch(/^deliver-webhooks: ok — 0 events from alerts, 0 delivered, 0 to retry, 0 failed/);
    expect(lines[5]).toMatch(/^rotate-keys: ok — 0 rotation-due warnings, 0 rotated by schedule, 0 not delivered/);
    expect((await t.db('api_keys').where({ id: key.id }).first()).status).toBe('expired');
    expect((await t.db('audit_events').where({ action: 'key.expire', target_id: key.id }).first()).actor_kind).toBe('system');
  });

  it('key:disable pauses a key and key:enable resumes it, audited as the CLI', async () => {
    const owner = await makeUser(services);
    const { key } = await makeKey(services, owner);
    const paused = await cli('key:disable', key.id);
    expect(paused.code).toBe(0);
    expect(paused.stderr).toContain('is now disabled');
    expect((await t.db('api_keys').where({ id: key.id }).first()).status).toBe('disabled');
    expect((await cli('key:enable', key.id)).code).toBe(0);
    expect((await t.db('api_keys').where({ id: key.id }).first()).status).toBe('active');
    expect(await t.db('audit_events').where({ target_id: key.id }).whereIn('action', ['key.disable', 'key.enable'])).toHaveLength(2);
    expect((await cli('key:disable')).code).toBe(2);
  });

  it('jobs:run <name> exits non-zero when the job fails, and 2 for an unknown job', async () => {
    const owner = await makeUser(services);
    const { key } = await makeKey(services, owner);
    const now = new Date();
    await t.db('holds').insert({
      request_id: 'req_cli_orphan', key_id: key.id, user_id: 'no-such-user', team_id: null, amount_micro: 1, model: 'm',
      provider: 'openai', endpoint: '/v1/chat/completions', streamed: false, created_at: now, deadline_at: new Date(now.getTime() - 1000),
    });
    const failed = await cli('jobs:run', 'release-holds');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^release-holds: failed — 0 released, 0 already settled, 1 failed/m);
    await t.db('holds').where({ request_id: 'req_cli_orphan' }).delete();

    const unknown = await cli('jobs:run', 'bogus');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('jobs:run <expire-keys|release-holds|reconcile|rollover|deliver-webhooks|rotate-keys|all>');
  });

  it('credit tops up a user’s prepaid balance or a team’s balance, with a ledger entry and an audit event', async () => {
    const owner = await makeUser(services);
    const team = await makeTeam(services, owner);

    const user = await cli('credit', '--email', owner.email.toUpperCase(), '--amount', '12.5', '--note', 'invoice 42');
    expect(user.code).toBe(0);
    expect(user.stdout).toBe('');
    expect(user.stderr).toContain('prepaid balance is now A$12.50');
    expect(toMicro((await t.db('personal_balances').where({ user_id: owner.user.id }).first()).prepaid_micro)).toBe(12_500_000);
    const userEntry = await t.db('ledger_entries').where({ user_id: owner.user.id, account: 'user_prepaid', kind: 'topup' }).first();
    expect([toMicro(userEntry.amount_micro), userEntry.note]).toEqual([12_500_000, 'invoice 42']);

    const teamRun = await cli('credit', '--team', team.id, '--amount', '0.000123');
    expect(teamRun.code).toBe(0);
    expect(teamRun.stderr).toContain('team balance is now A$0.000123');
    expect(toMicro((await t.db('teams').where({ id: team.id }).first()).balance_micro)).toBe(123);
    expect(toMicro((await t.db('ledger_entries').where({ team_id: team.id, kind: 'topup' }).first()).amount_micro)).toBe(123);

    const audits = await t.db('audit_events').where({ action: 'balance.credit' }).whereIn('target_id', [owner.user.id, team.id]);
    expect(audits.map((a: Record<string, unknown>) => [a.target_type, a.actor_kind]).sort()).toEqual([['team', 'cli'], ['user', 'cli']]);
    expect((await services.reconcile.reconcile({ userId: 'system', role: 'admin', via: 'system' })).drifts).toEqual([]);
  });

  it('credit refuses bad input without changing anything', async () => {
    const owner = await makeUser(services);
    const before = await t.db('ledger_entries').count({ n: '*' }).first();
    const cases = [
      ['--amount', '5'],
      ['--email', owner.email, '--team', 'x', '--amount', '5'],
      ['--email', owner.email, '--amount=-5'],
      ['--email', owner.email, '--amount', '1.2345678'],
      ['--email', owner.email, '--amount', 'ten'],
      ['--email', 'nobody@example.test', '--amount', '5'],
      ['--team', 'no-such-team', '--amount', '5'],
    ];
    // Independent and read-only when refused, so they run side by side (each is a process start).
    const runs = await Promise.all(cases.map((args) => cli('credit', ...args)));
    runs.forEach((run, i) => {
      const label = cases[i]!.join(' ');
      expect(run.code, label).toBe(2);
      expect(run.stderr, label).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
    });
    expect(await t.db('ledger_entries').count({ n: '*' }).first()).toEqual(before);
  });

  it('token:create makes a token owned by the user, audited as the CLI like every other CLI action', async () => {
    const owner = await makeUser(services);
    const made = await cli('token:create', '--email', owner.email, '--name', 'deploy');
    expect(made.code).toBe(0);
    const token = await t.db('management_tokens').where({ user_id: owner.user.id }).first();
    expect(token.name).toBe('deploy');
    const audit = await t.db('audit_events').where({ action: 'token.create', target_id: token.id }).first();
    expect({ actorId: audit.actor_id, actorKind: audit.actor_kind }).toEqual({ actorId: 'cli', actorKind: 'cli' });
    expect(JSON.parse(audit.details)).toEqual({ name: 'deploy', ownerId: owner.user.id });
    expect(audit.details).not.toContain(made.stdout.trim());
  });

  it('user:password sets a locked-out user\'s password, ends their sessions and is audited as cli', async () => {
    const admin = await makeUser(services, { admin: true });
    await t.db('sessions').insert({ id: 'x'.repeat(64), user_id: admin.user.id, expires_at: new Date(Date.now() + 60_000), created_at: new Date() });
    const generated = await cli('user:password', '--email', admin.email.toUpperCase());
    expect(generated.code).toBe(0);
    const password = generated.stdout.trim();
    expect(password).toMatch(/^[0-9A-Za-z]{20}$/);
    expect(await services.users.verifyCredentials(admin.email, password)).not.toBeNull();
    expect(await t.db('sessions').where({ user_id: admin.user.id })).toHaveLength(0);
    const given = await cli('user:password', '--email', admin.email, '--password', 'operator chosen passphrase');
    expect(given).toMatchObject({ code: 0, stdout: '' });
    expect(await services.users.verifyCredentials(admin.email, 'operator chosen passphrase')).not.toBeNull();
    const audit = await t.db('audit_events').where({ action: 'user.password_set', target_id: admin.user.id });
    expect(audit.map((e) => e.actor_kind)).toEqual(['cli', 'cli']);
    expect((await cli('user:password', '--email', 'nobody@example.test')).code).toBe(2);
    expect((await cli('user:password', '--email', admin.email, '--password', 'short')).code).toBe(2);
  });
});
