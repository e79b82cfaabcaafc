import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/domain/clock.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * MODELBRIDGE_WORKERS=2 with no provider configured (#14, point 15): the proxy's call to the built-in demo upstream
 * goes to the shared port and may be accepted by the other worker, so the workers must share the demo credential.
 * Workers need MySQL (SQLite is one process by design).
 */
describe.runIf(onMysql)('the demo upstream behind MODELBRIDGE_WORKERS=2 (mysql)', { timeout: 120_000 }, () => {
  let t: TestDb;
  let services: Services;
  let primary: ChildProcess;
  let url: string;
  let output = '';

  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock: systemClock, timeZone: 'Australia/Sydney' });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const { OPENAI_API_KEY: _o, ANTHROPIC_API_KEY: _a, OPENAI_BASE_URL: _ob, ANTHROPIC_BASE_URL: _ab, ...env } = process.env;
    primary = spawn(TSX, ['src/cli.ts', 'serve'], {
      cwd: ROOT,
      env: { ...env, DATABASE_URL: t.url!, MODELBRIDGE_WORKERS: '2', PORT: String(port), HOST: '127.0.0.1', MODELBRIDGE_JOBS: '0', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    primary.stdout!.on('data', (c) => (output += String(c)));
    primary.stderr!.on('data', (c) => (output += String(c)));
    await vi.waitFor(async () => expect((await fetch(`${url}/healthz`)).status).toBe(200), { timeout: 90_000, interval: 250 });
  });
  afterAll(async () => {
    if (primary && primary.exitCode === null) {
      const exited = new Promise((resolve) => primary.once('exit', resolve));
      primary.kill('SIGTERM');
      await exited;
    }
    await services?.metering.shutdown();
    await t?.destroy();
  });

  it('answers every demo request, whichever worker takes the demo call', async () => {
    const owner = await makeUser(services);
    const { secret } = await makeKey(services, owner);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      // A new connection each time, so the primary hands the requests (and the demo calls) to both workers.
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', connection: 'close' },
        body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: `hi ${i}` }] }),
      });
      statuses.push(res.status);
      await res.text();
    }
    expect(statuses.filter((s) => s !== 200), output).toEqual([]);
  });
});
