import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { toMicro } from '../../src/domain/money.js';
import { type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { proxyFixture } from '../support/proxy-fixture.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };
const message = { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user' as const, content: 'hello' }] };

describe(`overload and retry signals reach the client (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let secret: string;
  let keyId: string;
  let anthropic: Anthropic;
  let openai: OpenAI;

  const f = proxyFixture();
  beforeAll(() => void ({ fake, app, secret, keyId, anthropic, openai } = f));

  let seen = 0;
  async function newEvents() {
    const rows = await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id');
    const fresh = rows.slice(seen);
    seen = rows.length;
    return fresh.map((e) => [e.outcome, toMicro(e.cost_micro), e.http_status]);
  }

  async function post(path: string, body: unknown) {
    const auth: Record<string, string> = path.startsWith('/v1/messages') ? { 'x-api-key': secret } : { authorization: `Bearer ${secret}` };
    const r = await fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body) });
    return { status: r.status, headers: r.headers, json: await r.json() };
  }

  it('passes an Anthropic 529 through as 529 overloaded_error, retryable, with a default Retry-After, uncharged', async () => {
    await newEvents();
    fake.setMode('status:529');
    for (const body of [message, { ...message, stream: true }]) {
      const r = await post('/v1/messages', body);
      expect(r.status).toBe(529);
      expect(r.json).toEqual({ type: 'error', error: { type: 'overloaded_error', message: expect.any(String) } });
      expect(r.headers.get('x-should-retry')).toBe('true');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    const err = await anthropic.messages.create(message).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err).toMatchObject({ status: 529, error: { type: 'error', error: { type: 'overloaded_error' } } });
    expect(await newEvents()).toEqual([['upstream_error', 0, 529], ['upstream_error', 0, 529], ['upstream_error', 0, 529]]);
  });

  it('passes a 503 through as 503 in each format, with the upstream’s Retry-After', async () => {
    await newEvents();
    fake.setMode('status:503');
    fake.setRetryAfter('7');
    const a = await post('/v1/messages', message);
    expect(a.status).toBe(503);
    expect(a.json.error.type).toBe('overloaded_error');
    expect(a.headers.get('retry-after')).toBe('7');
    expect(a.headers.get('x-should-retry')).toBe('true');
    const err = await openai.chat.completions.create(chat).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 503, type: 'server_error' });
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('7');
    expect(await newEvents()).toEqual([['upstream_error', 0, 503], ['upstream_error', 0, 503]]);
  });

  it('still answers other upstream 5xx with 502', async () => {
    fake.setMode('status:500');
    const r = await post('/v1/chat/completions', chat);
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('upstream_error');
    await newEvents();
  });

  it('adds a Retry-After to an upstream 429 that has none, and keeps the one it has', async () => {
    await newEvents();
    fake.setMode('status:429');
    const without = await post('/v1/chat/completions', chat);
    expect(without.status).toBe(429);
    expect(without.json.error.message).toContain('Fake upstream error with status 429');
    expect(Number(without.headers.get('retry-after'))).toBeGreaterThan(0);
    fake.setRetryAfter('3');
    const withOne = await post('/v1/messages', message);
    expect(withOne.status).toBe(429);
    expect(withOne.headers.get('retry-after')).toBe('3');
    expect(await newEvents()).toEqual([['upstream_error', 0, 429], ['upstream_error', 0, 429]]);
  });

  it('does the same for token counting', async () => {
    const count = { model: message.model, messages: message.messages };
    fake.setMode('status:529');
    const overloaded = await post('/v1/messages/count_tokens', count);
    expect(overloaded.status).toBe(529);
    expect(overloaded.json.error.type).toBe('overloaded_error');
    expect(overloaded.headers.get('x-should-retry')).toBe('true');
    expect(Number(overloaded.headers.get('retry-after'))).toBeGreaterThan(0);
    fake.setMode('status:429');
    fake.setRetryAfter('4');
    const limited = await post('/v1/messages/count_tokens', count);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('4');
    fake.setRetryAfter(null);
    const noHeader = await post('/v1/messages/count_tokens', count);
    expect(Number(noHeader.headers.get('retry-after'))).toBeGreaterThan(0);
    fake.setMode('status:500');
    expect((await post('/v1/messages/count_tokens', count)).status).toBe(502);
  });

  it('sends Retry-After with its own 429s too', async () => {
    const owner = await makeUser(app.services, { prepaidMicro: 1_000_000 });
    const { secret: tiny } = await makeKey(app.services, owner, { spendLimitMicro: 1 });
    const client = new OpenAI({ apiKey: tiny, baseURL: `${app.url}/v1`, maxRetries: 0 });
    await client.chat.completions.create(chat);
    const r = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${tiny}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });
    expect(r.status).toBe(429);
    expect((await r.json()).error.code).toBe('spend_limit_reached');
    expect(r.headers.get('x-should-retry')).toBe('false');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
