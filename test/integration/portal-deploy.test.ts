import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser, type TestUser } from '../support/factories.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
const nginxAvailable = fs.existsSync(NGINX);
if (!nginxAvailable) {
  const message = `${NGINX} not found: install Debian's nginx (apt-get install -y nginx-light) to test docs/deploy.md's proxy block`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(message);
  console.warn(`!!! SKIPPING the reverse-proxy test: ${message}`);
}

/** The nginx `location` block of docs/deploy.md, exactly as an operator copies it. */
function documentedLocationBlock(): string {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  const block = [...doc.matchAll(/```nginx\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith('location / {'));
  if (!block) throw new Error('docs/deploy.md has no nginx `location / {` block');
  return block;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, nginx: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => (c.end(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${port}: ${log()}`);
}

/** docs/deploy.md's reverse-proxy set-up, run for real: nginx on loopback in front of ModelBridge. */
describe.skipIf(!nginxAvailable)(`Behind nginx as docs/deploy.md shows (${dialect})`, () => {
  let app: TestApp;
  let nginx: ChildProcess;
  let dir: string;
  let proxyUrl: string;
  let ada: TestUser;

  beforeAll(async () => {
    const proxyPort = await freePort();
    proxyUrl = `http://127.0.0.1:${proxyPort}`;
    // The address users open is the proxy's: that is PUBLIC_URL.
    app = await startTestApp({ env: { PUBLIC_URL: proxyUrl } });
    ada = await makeUser(app.services, { email: 'ada@example.com', prepaidMicro: 5_000_000 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelbridge-nginx-'));
    fs.chmodSync(dir, 0o777);
    const location = documentedLocationBlock().replace('http://127.0.0.1:3000', app.url);
    fs.writeFileSync(path.join(dir, 'modelbridge.conf'), location);
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      [
        'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log warn;`,
        'events { worker_connections 64; }',
        'http {',
        '  access_log off;',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`),
        `  server { listen 127.0.0.1:${proxyPort}; server_name localhost; include ${dir}/modelbridge.conf; }`,
        '}',
      ].join('\n'),
    );
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    nginx.stderr?.on('data', (d) => (output += d));
    await waitForPort(proxyPort, nginx, () => output + (fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''));
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await new Promise((resolve) => nginx.once('exit', resolve));
    }
    await app?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function signIn(origin: string): Promise<Response> {
    return fetch(`${proxyUrl}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
      body: new URLSearchParams({ email: ada.email, password: ada.password }),
    });
  }

  it('signs in through the proxy when PUBLIC_URL is the address users open', async () => {
    const res = await signIn(proxyUrl);
    expect(res.status).toBe(303);
    expect(res.headers.get('set-cookie')).toMatch(/HttpOnly/i);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const page = await fetch(`${proxyUrl}/keys`, { headers: { cookie } });
    expect(page.status).toBe(200);
    // The snippets name the public address, not the one ModelBridge listens on behind the proxy.
    expect(await page.text()).not.toContain(app.url);
  });

  it('answers a sign-in from another address with a 403 that points at PUBLIC_URL', async () => {
    const res = await signIn('https://llm.example.com');
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(body).toContain('PUBLIC_URL');
    expect(body).toContain(proxyUrl);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('passes a streamed reply through as it is generated, and the request is metered', async () => {
    const { secret, key } = await makeKey(app.services, ada, { name: 'via nginx' });
    const client = new OpenAI({ baseURL: `${proxyUrl}/v1`, apiKey: secret, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hello' }],
    });
    let chunks = 0;
    let usage: unknown = null;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(1);
    expect(usage).not.toBeNull();
    const after = await app.services.keys.get(key.id, ada.actor);
    expect(after.requestCount).toBe(1);
  });
});
