import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';

describe(`a base URL without /v1 (${dialect})`, () => {
  let app: TestApp;
  let secret: string;

  beforeAll(async () => {
    app = await startTestApp();
    const owner = await makeUser(app.services, { prepaidMicro: 1_000_000 });
    ({ secret } = await makeKey(app.services, owner));
  });
  afterAll(async () => app?.close());

  async function send(method: string, path: string, headers: Record<string, string> = {}) {
    const r = await fetch(`${app.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: method === 'GET' ? undefined : JSON.stringify({ model: 'x', messages: [] }),
    });
    return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
  }

  it('answers Anthropic paths with a JSON 404 in the Anthropic format that names the base URL to use', async () => {
    for (const path of ['/messages', '/messages/count_tokens', '/messages/batches']) {
      // As the AI SDK's createAnthropic({ baseURL: <root> }) posts: no Origin, so the portal's CSRF check would say 403.
      const r = await send('POST', path, { 'x-api-key': secret, 'anthropic-version': '2023-06-01' });
      expect(r.status, path).toBe(404);
      expect(r.type).toMatch(/^application\/json/);
      const body = JSON.parse(r.text);
      expect(body).toEqual({ type: 'error', error: { type: 'not_found_error', message: expect.any(String) } });
      expect(body.error.message).toContain(`${app.url}/v1`);
      expect(body.error.message).toContain(`POST ${path}`);
    }
  });

  it('answers OpenAI paths with a JSON 404 in the OpenAI format that names the base URL to use', async () => {
    for (const [method, path] of [['POST', '/chat/completions'], ['POST', '/embeddings'], ['POST', '/responses'], ['GET', '/responses/resp_123'], ['GET', '/models'], ['GET', '/models/gpt-4o-mini']]) {
      const r = await send(method!, path!, { authorization: `Bearer ${secret}` });
      expect(r.status, path).toBe(404);
      const body = JSON.parse(r.text);
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'unknown_url', param: null });
      expect(body.error.message).toContain(`${app.url}/v1`);
    }
  });

  it('tells the official SDKs what to change', async () => {
    const openai = new OpenAI({ apiKey: secret, baseURL: app.url, maxRetries: 0 });
    const err = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as Error).message).toContain(`${app.url}/v1`);
    // An Anthropic SDK given <root>/v1 posts to /v1/v1/messages: that is the /v1 door's own 404.
    const anthropic = new Anthropic({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    await expect(anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it('leaves the portal’s own pages alone', async () => {
    const login = await fetch(`${app.url}/login`);
    expect(login.status).toBe(200);
    expect(login.headers.get('content-type')).toMatch(/^text\/html/);
    await login.text();
    const page = await fetch(`${app.url}/messages-and-more`, { redirect: 'manual' });
    expect(page.headers.get('content-type') ?? '').not.toMatch(/^application\/json/);
    await page.text();
  });
});
