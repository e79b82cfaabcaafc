import { request as httpRequest } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { proxyFixture } from '../support/proxy-fixture.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };
const message = { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user' as const, content: 'hello' }] };

/**
 * A POST with headers exactly as given: an array value is sent as that many header lines (fetch would join them
 * into one).
 */
function postRaw(url: string, body: unknown, headers: Record<string, string | string[]>): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe(`headers as real clients send them (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let secret: string;
  let keyId: string;

  const f = proxyFixture();
  beforeAll(() => void ({ fake, app, secret, keyId } = f));

  const usageEvents = async () => (await app.t.db('usage_events').where({ key_id: keyId })).length;

  describe('anthropic-beta', () => {
    it('forwards features written with ", " separators, normalised to ","', async () => {
      const r = await postRaw(`${app.url}/v1/messages`, message, {
        'x-api-key': secret,
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'prompt-caching-2024-07-31, context-1m-2025-08-07 ,interleaved-thinking-2025-05-14',
      });
      expect(r.status).toBe(200);
      expect(fake.requests[0]!.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31,context-1m-2025-08-07,interleaved-thinking-2025-05-14');
    });

    it('forwards features sent as several header lines, to messages and to token counting', async () => {
      const betas = ['claude-code-20250219,oauth-2025-04-20', 'fine-grained-tool-streaming-2025-05-14'];
      expect((await postRaw(`${app.url}/v1/messages`, message, { 'x-api-key': secret, 'anthropic-beta': betas })).status).toBe(200);
      const counted = await postRaw(`${app.url}/v1/messages/count_tokens`, { model: message.model, messages: message.messages }, { 'x-api-key': secret, 'anthropic-beta': betas });
      expect(counted.status).toBe(200);
      expect(fake.requests.map((q) => q.headers['anthropic-beta'])).toEqual([
        'claude-code-20250219,oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14',
        'claude-code-20250219,oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14',
      ]);
    });

    it('forwards the betas the official SDK sends', async () => {
      const anthropic = new Anthropic({ apiKey: secret, baseURL: app.url, maxRetries: 0 });
      await anthropic.beta.messages.create({ ...message, betas: ['token-efficient-tools-2025-02-19', 'context-management-2025-06-27'] });
      expect(fake.requests[0]!.headers['anthropic-beta']).toBe('token-efficient-tools-2025-02-19,context-management-2025-06-27');
    });

    it('refuses an invalid feature with 400 in the Anthropic format, by position (never quoting the header), and forwards and charges nothing', async () => {
      const before = await usageEvents();
      for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
        const r = await postRaw(`${app.url}${path}`, message, { 'x-api-key': secret, 'anthropic-beta': 'prompt-caching-2024-07-31, bad feature!' });
        expect(r.status, path).toBe(400);
        expect(r.json).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('entry 2 is not a beta feature name') } });
        expect(JSON.stringify(r.json)).not.toContain('bad feature!');
      }
      expect(fake.requests).toHaveLength(0);
      expect(await usageEvents()).toBe(before);
    });
  });

  describe('two key headers', () => {
    it('takes the ModelBridge key from x-api-key when Authorization carries another token (Claude Code with both variables set)', async () => {
      // Claude Code sends ANTHROPIC_API_KEY as x-api-key and ANTHROPIC_AUTH_TOKEN as a bearer token, both when both are set.
      const r = await postRaw(`${app.url}/v1/messages`, message, { 'x-api-key': secret, authorization: 'Bearer sk-ant-oat01-some-other-token' });
      expect(r.status).toBe(200);
      const basic = await postRaw(`${app.url}/v1/messages`, message, { 'x-api-key': secret, authorization: 'Basic dXNlcjpwYXNz' });
      expect(basic.status).toBe(200);
      expect(fake.requests).toHaveLength(2);
    });

    it('takes it from Authorization when x-api-key carries something else', async () => {
      const openai = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0, defaultHeaders: { 'x-api-key': 'sk-unrelated' } });
      await expect(openai.chat.completions.create(chat)).resolves.toBeTruthy();
      const status = await fetch(`${app.url}/v1/key`, { headers: { authorization: `Bearer ${secret}`, 'x-api-key': 'not-a-key' } });
      expect(status.status).toBe(200);
    });

    it('accepts the same key in both', async () => {
      expect((await postRaw(`${app.url}/v1/chat/completions`, chat, { 'x-api-key': secret, authorization: `Bearer ${secret}` })).status).toBe(200);
    });

    it('refuses two different ModelBridge keys with 401, forwarding nothing', async () => {
      const owner = await makeUser(app.services, { prepaidMicro: 1_000_000 });
      const { secret: other } = await makeKey(app.services, owner);
      const r = await postRaw(`${app.url}/v1/messages`, message, { 'x-api-key': secret, authorization: `Bearer ${other}` });
      expect(r.status).toBe(401);
      expect(r.json).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
      expect(JSON.stringify(r.json)).not.toContain(other.slice(4, 20));
      expect(fake.requests).toHaveLength(0);
    });
  });
});
