import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/auth/secret-format.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');

/**
 * The end-to-end promise of SPEC §7: an operator creates a user and a management token with the CLI, and a
 * script using only the exported typed client creates, lists, updates, rotates and revokes keys.
 */
describe(`CLI and the rotate-key example against a real app (${dialect})`, () => {
  let t: TestDb;
  let app: TestApp;
  /** The CLI's environment: this test's database and nothing inherited that could point elsewhere. */
  let env: NodeJS.ProcessEnv;

  async function cli(...args: string[]) {
    return run(tsx, ['src/cli.ts', ...args], { cwd: root, env, timeout: 60_000 });
  }

  beforeAll(async () => {
    t = await createTestDb();
    const { DATABASE_URL: _d, SQLITE_PATH: _s, ...inherited } = process.env;
    env = { ...inherited, LOG_LEVEL: 'silent', MODELBRIDGE_JOBS: '0', ...(t.url ? { DATABASE_URL: t.url } : { SQLITE_PATH: t.sqlitePath! }) };
  });
  afterAll(async () => {
    await app?.close();
    await t.destroy();
  });

  it('user:create prints only the new user id; token:create prints only the token', async () => {
    const created = await cli('user:create', '--email', 'Ops@Example.test', '--password', 'a long enough password', '--name', 'Ops', '--plan', 'Pro');
    const userId = created.stdout.trim();
    expect(created.stdout).toMatch(/^[0-9A-Za-z]{20}\n$/);
    expect(await t.db('users').where({ id: userId }).first()).toMatchObject({ email: 'ops@example.test', name: 'Ops', role: 'user', plan_id: 'plan_pro' });

    const admin = await cli('user:create', '--email', 'root@example.test', '--password', 'another long password', '--admin');
    expect((await t.db('users').where({ id: admin.stdout.trim() }).first()).role).toBe('admin');

    const token = await cli('token:create', '--email', 'ops@example.test', '--name', 'rotation bot');
    expect(token.stdout).toMatch(/^mbm_[0-9A-Za-z]{34}\n$/);
    const row = await t.db('management_tokens').where({ token_hash: hashSecret(token.stdout.trim()) }).first();
    expect(row).toMatchObject({ user_id: userId, name: 'rotation bot' });
    env.TEST_TOKEN = token.stdout.trim();
  });

  it('refuses a duplicate user with a message on stderr, nothing on stdout, and a failing exit code', async () => {
    const failed = await cli('user:create', '--email', 'ops@example.test', '--password', 'a long enough password').then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stdout).toBe('');
    expect(failed?.stderr).toMatch(/already exists/);
    expect(failed?.stderr).not.toContain('a long enough password');
  });

  it('credit tops up a prepaid balance', async () => {
    await cli('credit', '--email', 'ops@example.test', '--amount', '12.50', '--note', 'invoice 1');
    const user = await t.db('users').where({ email: 'ops@example.test' }).first();
    const balance = await t.db('personal_balances').where({ user_id: user.id }).first();
    expect(String(balance.prepaid_micro)).toBe('12500000');
  });

  it('runs examples/rotate-key.ts with only the typed client: create, rotate, list, update, revoke', async () => {
    app = await startTestApp({ testDb: t });
    const token = env.TEST_TOKEN!;
    const { stdout, stderr } = await run(tsx, ['examples/rotate-key.ts'], {
      cwd: root,
      env: { ...env, MODELBRIDGE_URL: app.url, MODELBRIDGE_TOKEN: token },
      timeout: 60_000,
    });
    expect(stderr).toBe('');
    expect(stdout).toContain('Signed in as ops@example.test (plan Pro).');
    expect(stdout).not.toContain(token);

    // Exactly one secret is printed, labelled, and it is the successor's.
    const secrets = stdout.match(/mbk_[0-9A-Za-z]{34}/g) ?? [];
    expect(secrets).toHaveLength(1);
    expect(stdout).toContain(`NEW KEY SECRET (shown once, store it now): ${secrets[0]}`);

    const user = await t.db('users').where({ email: 'ops@example.test' }).first();
    const keys = await t.db('api_keys').where({ owner_id: user.id }).orderBy('created_at');
    expect(keys).toHaveLength(2);
    const [old, successor] = keys;
    expect(successor.key_hash).toBe(hashSecret(secrets[0]!));
    expect(old).toMatchObject({ status: 'revoked', rotated_to_id: successor.id });
    expect(successor).toMatchObject({ status: 'active', name: old.name });
    expect(String(successor.spend_limit_micro)).toBe('25000000');
    expect(stdout).toMatch(/Your keys \(2\):/);
    expect(stdout).toMatch(/Revoked: .* revoked/);

    const actions = (await t.db('audit_events').whereIn('target_id', [old.id, successor.id]).orderBy('id')).map((r) => `${r.action}:${r.actor_kind}`);
    expect(actions).toEqual(['key.create:token', 'key.rotate:token', 'key.update:token', 'key.revoke:token']);
  });

  it('exits non-zero with the API’s message when the token is not accepted', async () => {
    const failed = await run(tsx, ['examples/rotate-key.ts'], {
      cwd: root,
      env: { ...env, MODELBRIDGE_URL: app.url, MODELBRIDGE_TOKEN: 'mbm_not_a_real_token' },
      timeout: 60_000,
    }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/ModelBridge refused: .*\(UNAUTHORIZED\)/);
  });
});
