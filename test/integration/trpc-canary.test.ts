import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/auth/secret-format.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect, onMysql } from '../support/db.js';
import { adminActor, actorOf } from '../support/factories.js';
import { allProcedures, bearer, insertUsageEvent, rawCall, sessionCookieFor, type RawResult } from '../support/trpc.js';

/**
 * SPEC §9: no key, token or password appears in any log, error, table or later response. Create users, keys and
 * tokens whose secrets we know, drive every procedure (successes and refusals), then look for the secrets
 * everywhere: every column of every table, every log line, every response after the one that showed the secret.
 */
describe(`no secret anywhere after creation (${dialect})`, () => {
  let app: TestApp;
  const passwords = ['canary-password-Alpha-7f3k', 'canary-password-Admin-9q2x'];
  const secrets: string[] = [];
  /** Responses allowed to carry a secret: the create/rotate response that shows it, once. */
  const showOnce = new Set<RawResult>();
  const responses: RawResult[] = [];

  async function call(type: 'query' | 'mutation', path: string, input: unknown, headers: Record<string, string>, revealsSecret = false) {
    const res = await rawCall(app, type, path, input, headers);
    responses.push(res);
    if (revealsSecret) {
      showOnce.add(res);
      const secret = res.body.result.data.secret as string;
      expect(secret).toMatch(/^mb[km]_/);
      secrets.push(secret);
    }
    return res;
  }

  async function tableDump(): Promise<Array<{ table: string; text: string }>> {
    const db = app.t.db;
    const tables: string[] = onMysql
      ? ((await db.raw('SHOW TABLES'))[0] as Array<Record<string, string>>).map((r) => Object.values(r)[0]!)
      : (await db('sqlite_master').where({ type: 'table' }).select('name')).map((r: { name: string }) => r.name);
    const dump: Array<{ table: string; text: string }> = [];
    for (const table of tables) for (const row of await db(table).select('*')) dump.push({ table, text: JSON.stringify(row) });
    return dump;
  }

  beforeAll(async () => {
    app = await startTestApp();
    const s = app.services;
    const alice = await s.users.create({ email: 'alice@canary.test', password: passwords[0]!, name: 'Alice' }, adminActor);
    const admin = await s.users.create({ email: 'root@canary.test', password: passwords[1]!, role: 'admin' }, adminActor);
    const bob = await s.users.create({ email: 'bob@canary.test', password: 'canary-password-Bob-0000' }, adminActor);
    passwords.push('canary-password-Bob-0000');
    expect(await s.users.verifyCredentials('alice@canary.test', passwords[0]!)).not.toBeNull();
    expect(await s.users.verifyCredentials('alice@canary.test', 'wrong password here')).toBeNull();

    const aliceToken = (await s.tokens.create({ name: 'canary', expiresAt: null }, actorOf(alice))).secret;
    const adminToken = (await s.tokens.create({ name: 'canary admin', expiresAt: null }, actorOf(admin))).secret;
    secrets.push(aliceToken, adminToken);
    const cookie = await sessionCookieFor(app, { user: alice, actor: actorOf(alice), email: alice.email, password: passwords[0]! });
    secrets.push(cookie.split('=')[1]!);
    const A = bearer(aliceToken);
    const R = bearer(adminToken);

    const personal = (await call('mutation', 'keys.create', { name: 'canary personal', spendLimitAud: '5' }, A, true)).body.result.data.key;
    const team = (await call('mutation', 'teams.create', { name: 'Canary team' }, A)).body.result.data;
    await call('mutation', 'teams.addMember', { teamId: team.id, email: bob.email, role: 'member' }, A);
    const teamKey = (await call('mutation', 'keys.create', { name: 'canary team', teamId: team.id, expiresAt: '2029-01-01T00:00:00Z' }, A, true)).body.result.data.key;
    await insertUsageEvent(app, personal);
    await call('mutation', 'keys.update', { id: personal.id, spendLimitAud: '6', name: 'renamed' }, A);
    const rotated = (await call('mutation', 'keys.rotate', { id: personal.id, gracePeriodSeconds: 30 }, A, true)).body.result.data;
    await call('mutation', 'keys.rotate', { id: rotated.key.id, gracePeriodSeconds: 0 }, A, true);
    await call('mutation', 'keys.revoke', { id: teamKey.id }, A);
    await call('mutation', 'keys.create', { name: 'by cookie' }, { cookie, origin: app.url }, true);
    await call('mutation', 'keys.create', { name: 'cross-site' }, { cookie, origin: 'https://evil.example' });
    const token = (await call('mutation', 'tokens.create', { name: 'second' }, A, true)).body.result.data;
    await call('mutation', 'tokens.revoke', { id: token.token.id }, A);
    await call('mutation', 'teams.setRole', { teamId: team.id, userId: bob.id, role: 'viewer' }, A);
    await call('mutation', 'teams.removeMember', { teamId: team.id, userId: bob.id }, A);
    await call('mutation', 'admin.credit', { userId: alice.id, amountAud: '10' }, R);
    await call('mutation', 'admin.credit', { teamId: team.id, amountAud: '10' }, R);
    await call('mutation', 'admin.users.setPlan', { userId: alice.id, planId: 'plan_pro' }, R);
    await call('mutation', 'admin.users.disable', { userId: bob.id }, R);
    await call('mutation', 'admin.models.upsert', { id: 'canary-model', provider: 'openai', upstreamModel: 'x', inputAudPerMTok: '1', outputAudPerMTok: '2' }, R);
    const plan = (await call('mutation', 'admin.plans.create', { name: 'Canary', includedAud: '1', overageAllowed: false, overageCapAud: null }, R)).body.result.data;
    await call('mutation', 'admin.plans.update', { id: plan.id, includedAud: '2' }, R);
    await call('mutation', 'keys.revoke', { id: personal.id }, R);

    // Every query as each caller, and every procedure fed the secrets themselves, as credentials and as input.
    for (const { path, type } of await allProcedures()) {
      for (const headers of [A, R, { cookie }]) await call(type, path, type === 'query' ? undefined : {}, headers);
      for (const secret of [...secrets]) {
        await call(type, path, { id: secret, name: secret, status: secret, email: secret, teamId: secret }, R);
        await call(type, path, {}, bearer(secret));
      }
    }
    await call('query', 'keys.list', { all: true }, R);
    await call('query', 'admin.audit.list', { limit: 500 }, R);
  });
  afterAll(async () => app.close());

  it('drove a meaningful amount of traffic and captured logs', () => {
    expect(secrets.length).toBeGreaterThanOrEqual(9);
    expect(responses.length).toBeGreaterThan(500);
    expect(app.logs.length).toBeGreaterThan(500);
  });

  it('stores only hashes: the scan sees every table, and finds hashes but never a secret or password', async () => {
    const dump = await tableDump();
    const tables = new Set(dump.map((d) => d.table));
    for (const t of ['users', 'api_keys', 'management_tokens', 'sessions', 'audit_events', 'usage_events', 'ledger_entries', 'teams', 'plans']) expect(tables).toContain(t);
    const all = dump.map((d) => d.text).join('\n');
    // Positive controls: the scan really reads these columns.
    expect(all).toContain(hashSecret(secrets[0]!));
    expect(all).toContain('canary personal');
    for (const secret of [...secrets, ...passwords]) {
      const hit = dump.find((d) => d.text.includes(secret));
      expect(hit, `a secret is stored in ${hit?.table}`).toBeUndefined();
    }
    // Nothing resembling a key or token body, either (e.g. a secret with its prefix cut off).
    for (const secret of secrets) expect(all).not.toContain(secret.slice(4, 24));
  });

  it('never writes a secret or password to a log line', () => {
    const logs = app.logs.join('');
    expect(logs).toContain('keys.create');
    for (const secret of [...secrets, ...passwords]) expect(logs).not.toContain(secret);
    for (const secret of secrets) expect(logs).not.toContain(secret.slice(4, 24));
  });

  it('shows each secret in exactly one response: the one that created it', () => {
    for (const secret of secrets.filter((s) => s.startsWith('mbk_'))) {
      const showing = responses.filter((r) => r.text.includes(secret));
      expect(showing).toHaveLength(1);
      expect(showOnce.has(showing[0]!)).toBe(true);
    }
    for (const res of responses.filter((r) => !showOnce.has(r))) for (const secret of [...secrets, ...passwords]) expect(res.text).not.toContain(secret);
  });
});
