import http from 'node:http';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const PROVIDER_KEY = 'sk-provider-canary-5f1e';
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 4 };

describe(`the upstream comes from configuration only (${dialect})`, () => {
  let fake: FakeUpstream;
  let evil: FakeUpstream;
  let app: TestApp;
  let secret: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    evil = await startFakeUpstream();
    app = await startTestApp({ env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: PROVIDER_KEY, ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: PROVIDER_KEY } });
    const owner = await makeUser(app.services, { prepaidMicro: 5_000_000 });
    ({ secret } = await makeKey(app.services, owner));
  });
  beforeEach(() => {
    fake.reset();
    evil.reset();
  });
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
    await evil?.close();
  });

  const evilHost = () => new URL(evil.url).host;

  it('ignores Host, forwarding and gateway-style routing headers', async () => {
    const headers = {
      authorization: `Bearer ${secret}`,
      'content-type': 'application/json',
      host: evilHost(),
      'x-forwarded-host': evilHost(),
      'x-portkey-custom-host': evil.openaiBaseUrl,
      'x-portkey-provider': 'openai',
      'x-portkey-config': JSON.stringify({ custom_host: evil.openaiBaseUrl }),
      'x-base-url': evil.openaiBaseUrl,
      'x-fake-mode': 'error',
      'openai-organization': 'org-client',
      cookie: 'session=abc',
    };
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${app.url}/v1/chat/completions`, { method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ ...chat, api_base: evil.openaiBaseUrl, base_url: evil.openaiBaseUrl }));
    });
    expect(status).toBe(200);
    expect(evil.requests).toHaveLength(0);
    expect(fake.requests).toHaveLength(1);
    const sent = fake.requests[0]!.headers;
    expect(sent.host).toBe(new URL(fake.url).host);
    expect(sent.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    for (const name of ['x-forwarded-host', 'x-portkey-custom-host', 'x-portkey-config', 'x-base-url', 'x-fake-mode', 'openai-organization', 'cookie'])
      expect(sent[name], name).toBeUndefined();
  });

  it('ignores an absolute URL in the request line', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const target = new URL(app.url);
      const req = http.request({ host: target.hostname, port: target.port, method: 'POST', path: `${evil.openaiBaseUrl}/chat/completions`,
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify(chat));
    });
    expect(status).toBe(200);
    expect(evil.requests).toHaveLength(0);
    expect(fake.requests).toHaveLength(1);
  });

  it('never writes the client key or the provider key to a log line or a response', async () => {
    const client = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    await client.chat.completions.create(chat);
    fake.setMode('status:401');
    const r = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: JSON.stringify(chat) });
    const text = await r.text();
    fake.setMode('error');
    await client.chat.completions.create({ ...chat, stream: true }).catch(() => undefined);
    await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret.slice(0, -2)}xx` }, body: '{' });
    for (const canary of [secret, secret.slice(4, 24), PROVIDER_KEY]) {
      expect(text).not.toContain(canary);
      expect(app.logs.join('\n')).not.toContain(canary);
    }
    for (const table of ['usage_events', 'holds', 'ledger_entries', 'audit_events'])
      expect(JSON.stringify(await app.t.db(table))).not.toContain(secret.slice(4, 24));
  });
});
