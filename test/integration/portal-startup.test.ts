import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeTeam, makeUser } from '../support/factories.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

/** What a new operator hits first: `npm start` on a busy port, `cli --help`, a bad worker count, `credit --team`. */
describe(`Start-up and CLI as an operator meets them (${dialect})`, { timeout: 120_000 }, () => {
  let t: TestDb;
  let services: Services;
  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock: systemClock, timeZone: 'Australia/Sydney' });
  });
  afterAll(async () => t.destroy());

  function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, LOG_LEVEL: 'info', MODELBRIDGE_JOBS: '0', DATABASE_URL: t.url ?? '', ...(t.sqlitePath && { SQLITE_PATH: t.sqlitePath }), ...extra };
  }

  function cli(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(TSX, ['src/cli.ts', ...args], { cwd: ROOT, env: env(extra), timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  it('serve on a port already in use exits non-zero with a message naming the port, and starts nothing', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const child = spawn(TSX, ['src/cli.ts', 'serve'], { cwd: ROOT, env: env({ PORT: String(port), HOST: '127.0.0.1' }) });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      clearTimeout(timer);
      expect(code).toBe(1);
      expect(stderr).toContain(`port ${port} is already in use`);
      expect(stderr).toContain(`127.0.0.1:${port}`);
      expect(stdout + stderr).not.toContain('ModelBridge listening');
      expect(stderr).not.toMatch(/at .*\.ts:\d+/);
    } finally {
      blocker.close();
    }
  });

  it('cli --help prints the usage on stdout and exits 0; an unknown command still exits 2', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: npm run cli -- <command>');
    const unknown = await cli(['bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Usage: npm run cli -- <command>');
  });

  it.runIf(dialect === 'sqlite')('MODELBRIDGE_WORKERS=2 on SQLite stops start-up naming the variable', async () => {
    const run = await cli(['migrate'], { MODELBRIDGE_WORKERS: '2', DATABASE_URL: '', SQLITE_PATH: path.join(os.tmpdir(), 'mb-workers.db') });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('MODELBRIDGE_WORKERS');
    expect(run.stderr).toContain('MySQL');
  });

  it('credit --team accepts the team’s name as the portal shows it, and refuses an ambiguous or unknown one', async () => {
    const owner = await makeUser(services);
    const team = await makeTeam(services, owner, { name: 'Research Lab' });
    const byName = await cli(['credit', '--team', 'research lab', '--amount', '3']);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stderr).toContain('team balance is now A$3.00');
    expect(toMicro((await t.db('teams').where({ id: team.id }).first()).balance_micro)).toBe(3_000_000);

    const twin = await makeTeam(services, owner, { name: 'Twin' });
    await makeTeam(services, owner, { name: 'Twin' });
    const ambiguous = await cli(['credit', '--team', 'Twin', '--amount', '3']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain('2 teams are named "Twin"');
    const byId = await cli(['credit', '--team', twin.id, '--amount', '1']);
    expect(byId.code, byId.stderr).toBe(0);
    const unknown = await cli(['credit', '--team', 'Nobody', '--amount', '1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no team named or with id "Nobody"');
  });
});
