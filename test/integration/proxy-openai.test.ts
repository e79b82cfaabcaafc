import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost, type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const PROVIDER_KEY = 'sk-openai-provider-test';

describe(`OpenAI endpoints through the official SDK (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let openai: OpenAI;
  let secret: string;
  let keyId: string;
  let mini: CatalogModel;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: PROVIDER_KEY } });
    const owner = await makeUser(app.services, { prepaidMicro: 20_000_000 });
    const created = await makeKey(app.services, owner, { name: 'sdk key' });
    secret = created.secret;
    keyId = created.key.id;
    openai = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    mini = (await app.services.models.find('gpt-4o-mini'))!;
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  async function newEvents(before: number) {
    const rows = await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id');
    return rows.slice(before);
  }
  const eventCount = async () => (await app.t.db('usage_events').where({ key_id: keyId })).length;

  it('answers a chat completion and charges it once at the catalog price', async () => {
    const before = await eventCount();
    const spendBefore = toMicro((await app.t.db('api_keys').where({ id: keyId }).first()).spend_micro);
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Say hello to ModelBridge' }], max_tokens: 20 };
    const res = await openai.chat.completions.create(body);
    const exp = fake.expectedUsage(body);
    expect(res.choices[0]!.message.content).toBe('tok '.repeat(exp.outputTokens));
    expect(res.usage).toMatchObject({ prompt_tokens: exp.inputTokens, completion_tokens: exp.outputTokens });

    const events = await newEvents(before);
    expect(events).toHaveLength(1);
    const cost = requestCost(mini, exp);
    expect(events[0]).toMatchObject({ model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', outcome: 'ok',
      input_tokens: exp.inputTokens, output_tokens: exp.outputTokens, http_status: 200 });
    expect(toMicro(events[0].cost_micro)).toBe(cost);
    expect(Boolean(events[0].estimated)).toBe(false);
    const key = await app.t.db('api_keys').where({ id: keyId }).first();
    expect(toMicro(key.spend_micro) - spendBefore).toBe(cost);
    expect(toMicro(key.held_micro)).toBe(0);
    expect(fake.served).toBe(1);
  });

  it('forwards the body unchanged, with the provider key and never the client key', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], temperature: 0.3, user: 'u-1' };
    await openai.chat.completions.create(body);
    const rec = fake.requests[0]!;
    expect(rec.path).toBe('/v1/chat/completions');
    expect(rec.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(JSON.stringify(rec.headers)).not.toContain(secret);
    expect(rec.body).toEqual(body);
  });

  it('streams chunk by chunk and hides the usage chunk it asked for when the client did not', async () => {
    const before = await eventCount();
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Stream please' }], stream: true as const };
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await openai.chat.completions.create(body)) chunks.push(c);
    const exp = fake.expectedUsage(body);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('tok '.repeat(exp.outputTokens));
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.some((c) => c.usage)).toBe(false);
    // The upstream was asked for usage even though the client did not ask.
    expect(fake.requests[0]!.body.stream_options).toEqual({ include_usage: true });

    const events = await newEvents(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'ok', input_tokens: exp.inputTokens, output_tokens: exp.outputTokens });
    expect(Boolean(events[0].streamed)).toBe(true);
    expect(toMicro(events[0].cost_micro)).toBe(requestCost(mini, exp));
  });

  it('passes the usage chunk through when the client asked for it', async () => {
    const before = await eventCount();
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Stream with usage' }], stream: true as const,
      stream_options: { include_usage: true } };
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await openai.chat.completions.create(body)) chunks.push(c);
    const exp = fake.expectedUsage(body);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: exp.inputTokens, completion_tokens: exp.outputTokens });
    const events = await newEvents(before);
    expect(events).toHaveLength(1);
    expect(toMicro(events[0].cost_micro)).toBe(requestCost(mini, exp));
  });

  it('relays the chunks without the "usage":null that asking for usage adds, unless the client asked for it', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Stream please' }], stream: true };
    const raw = async (b: unknown) => {
      const r = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(b) });
      return (await r.text()).split('\n\n').filter(Boolean);
    };
    const hidden = await raw(body);
    expect(hidden.at(-1)).toBe('data: [DONE]');
    expect(hidden.filter((e) => e.includes('"usage"'))).toEqual([]);
    for (const event of hidden.slice(0, -1)) expect(JSON.parse(event.slice(6))).toMatchObject({ object: 'chat.completion.chunk', choices: [expect.anything()] });
    // Asked for: passed through as the upstream sent it, "usage":null in every chunk and the usage chunk last.
    const shown = await raw({ ...body, stream_options: { include_usage: true } });
    expect(shown.slice(0, -2).every((e) => e.endsWith(',"usage":null}'))).toBe(true);
    expect(JSON.parse(shown.at(-2)!.slice(6))).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
    expect(fake.requests.map((r) => r.body.stream_options)).toEqual([{ include_usage: true }, { include_usage: true }]);
  });

  it('meters embeddings (input only) in the SDK’s default base64 encoding', async () => {
    const before = await eventCount();
    const body = { model: 'text-embedding-3-small', input: ['first text', 'second, longer text'] };
    const res = await openai.embeddings.create(body);
    expect(res.data).toHaveLength(2);
    expect(res.data[0]!.embedding.length).toBeGreaterThan(0);
    const exp = fake.expectedUsage(body);
    const model = (await app.services.models.find('text-embedding-3-small'))!;
    const events = await newEvents(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ endpoint: '/v1/embeddings', input_tokens: exp.inputTokens, output_tokens: 0 });
    expect(toMicro(events[0].cost_micro)).toBe(requestCost(model, { inputTokens: exp.inputTokens, outputTokens: 0 }));
  });

  it('charges every one of several sequential and parallel requests exactly once', async () => {
    const before = await eventCount();
    const bodies = Array.from({ length: 6 }, (_, i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `n${i} ${'x'.repeat(i * 7)}` }], stream: i % 2 === 0 }));
    await Promise.all(bodies.map(async (b) => {
      if (b.stream) for await (const _ of await openai.chat.completions.create({ ...b, stream: true })) { /* drain */ }
      else await openai.chat.completions.create({ ...b, stream: false });
    }));
    const events = await newEvents(before);
    expect(events).toHaveLength(6);
    const expected = bodies.reduce((s, b) => { const u = fake.expectedUsage(b); return s + requestCost(mini, u); }, 0);
    expect(events.reduce((s, e) => s + toMicro(e.cost_micro), 0)).toBe(expected);
    expect(fake.served).toBe(6);
  });

  it('lists the enabled catalog models in the OpenAI list format', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-4o-mini', 'text-embedding-3-small', 'claude-haiku-4-5']));
    const admin = await makeUser(app.services, { admin: true });
    await app.services.models.upsert({ ...mini, id: 'gpt-disabled', enabled: false }, admin.actor);
    const again: string[] = [];
    for await (const m of openai.models.list()) again.push(m.id);
    expect(again).not.toContain('gpt-disabled');
    expect(await openai.models.retrieve('gpt-4o-mini')).toMatchObject({ id: 'gpt-4o-mini', object: 'model', owned_by: 'openai' });
    await expect(openai.models.retrieve('gpt-disabled')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(fake.requests).toHaveLength(0);
  });
});
