import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import { createDb, type Db } from '../../../src/db/knex.js';
import { randomBase62 } from '../../../src/domain/ids.js';
import { dialect, TEST_DATABASE_URL } from '../../support/db.js';
import { runBounded } from './processes.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface Installation {
  /** Where ModelBridge listens (http://127.0.0.1:PORT). */
  url: string;
  /** A connection to the installation's database, for the bill check. */
  db: Db;
  /** Everything the server printed (its JSON log lines). */
  output(): string;
  /** `npm run cli -- <args>` against this installation; resolves to its stdout. */
  cli(...args: string[]): Promise<string>;
  /**
   * A user with a prepaid top-up, made the way an operator would (CLI), and a management token of theirs; then a
   * ModelBridge key made with that token over tRPC. Resolves to the key's secret and the token.
   */
  userWithKey(email: string, prepaidAud: string): Promise<{ secret: string; token: string }>;
  /** keys.create over tRPC as the owner of `token`; resolves to the new key's id and secret. */
  createKey(token: string, input: { name: string; spendLimitAud?: string }): Promise<{ id: string; secret: string }>;
  /** A tRPC mutation as the owner of `token` (e.g. keys.update); resolves to its result data. */
  trpc(token: string, path: string, input: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * A fresh install, as a user gets it: `npm start` on an empty database with only the Anthropic provider settings
 * (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL), and the OpenAI ones when given — on SQLite the embedded default file (placed in a temporary folder with
 * SQLITE_PATH), on MySQL an empty schema of its own. The server migrates and seeds the catalog itself.
 */
export async function startInstallation(provider: { anthropicBaseUrl: string; anthropicApiKey: string; openaiBaseUrl?: string; openaiApiKey?: string }): Promise<Installation> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelbridge-install-'));
  let databaseUrl: string | undefined;
  let dropSchema = async () => {};
  if (dialect === 'mysql') {
    const base = new URL(TEST_DATABASE_URL);
    const name = `modelbridge_i_${randomBase62(10).toLowerCase()}`;
    const admin = knexFactory({ client: 'mysql2', connection: { host: base.hostname, port: Number(base.port || 3306), user: decodeURIComponent(base.username), password: decodeURIComponent(base.password) } });
    await admin.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    base.pathname = `/${name}`;
    databaseUrl = base.toString();
    dropSchema = async () => {
      await admin.raw(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.destroy();
    };
  }
  const sqlitePath = path.join(dir, 'modelbridge.db');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    ANTHROPIC_API_KEY: provider.anthropicApiKey,
    ANTHROPIC_BASE_URL: provider.anthropicBaseUrl,
    ...(provider.openaiBaseUrl ? { OPENAI_BASE_URL: provider.openaiBaseUrl, OPENAI_API_KEY: provider.openaiApiKey ?? 'sk-openai' } : {}),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { SQLITE_PATH: sqlitePath }),
  };

  const server: ChildProcess = spawn('npm', ['start', '--silent'], { cwd: REPO_ROOT, env: { ...env, PORT: '0' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
  server.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  const stop = () => { try { process.kill(-server.pid!, 'SIGTERM'); } catch { /* already gone */ } };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error(`npm start did not listen within 60 s:\n${output}`)); }, 60_000);
    const check = () => {
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)".*"msg":"ModelBridge listening"/.exec(output);
      if (match) { clearTimeout(timer); server.stdout!.off('data', check); resolve(match[1]!); }
    };
    server.stdout!.on('data', check);
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`npm start exited with ${code}:\n${output}`)); });
  });
  const db = createDb({ databaseUrl, sqlitePath });

  const cli = async (...args: string[]) => {
    const run = await runBounded('npm', ['run', '--silent', 'cli', '--', ...args], { cwd: REPO_ROOT, env, timeoutMs: 60_000 });
    if (run.code !== 0) throw new Error(`npm run cli -- ${args[0]} exited with ${run.code}: ${run.stderr}`);
    return run.stdout.trim();
  };

  const trpc = async (token: string, procedure: string, input: unknown) => {
    const res = await fetch(`${url}/trpc/${procedure}`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(input),
    });
    if (!res.ok) throw new Error(`${procedure} answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { result: { data: unknown } }).result.data;
  };
  const createKey = async (token: string, input: { name: string; spendLimitAud?: string }) => {
    const { key, secret } = (await trpc(token, 'keys.create', input)) as { key: { id: string }; secret: string };
    return { id: key.id, secret };
  };

  return {
    url,
    db,
    output: () => output,
    cli,
    async userWithKey(email, prepaidAud) {
      await cli('user:create', '--email', email, '--password', `pw-${randomBase62(16)}`, '--name', 'Client tier');
      await cli('credit', '--email', email, '--amount', prepaidAud, '--note', 'client tier');
      const token = await cli('token:create', '--email', email, '--name', 'client tier');
      return { secret: (await createKey(token, { name: 'Claude Code' })).secret, token };
    },
    createKey,
    trpc,
    async close() {
      const exited = new Promise<void>((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', () => resolve())));
      stop();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      try { process.kill(-server.pid!, 'SIGKILL'); } catch { /* gone */ }
      await db.destroy();
      await dropSchema();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
