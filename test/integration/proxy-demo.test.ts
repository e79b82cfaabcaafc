import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';

describe(`the built-in demo upstream, with no provider configured (${dialect})`, () => {
  let app: TestApp;
  let secret: string;
  let keyId: string;

  beforeAll(async () => {
    app = await startTestApp();
    const owner = await makeUser(app.services);
    ({ secret, key: { id: keyId } } = await makeKey(app.services, owner, { name: 'first try' }));
  });
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => app?.close());

  it('answers OpenAI requests with labelled demo replies, metered like any other', async () => {
    const openai = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const res = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi!' }] });
    expect(res.choices[0]!.message.content).toMatch(/^\[ModelBridge demo\]/);
    expect(res.choices[0]!.message.content).toContain('OPENAI_API_KEY');
    let streamed = '';
    for await (const c of await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi!' }], stream: true, max_tokens: 5 }))
      streamed += c.choices[0]?.delta.content ?? '';
    expect(streamed.split(' ').filter(Boolean)).toHaveLength(5);
    const emb = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    expect(emb.data[0]!.embedding).toHaveLength(1536);

    const events = await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id');
    expect(events.map((e) => [e.endpoint, e.outcome])).toEqual([['/v1/chat/completions', 'ok'], ['/v1/chat/completions', 'ok'], ['/v1/embeddings', 'ok']]);
    expect(events[1].output_tokens).toBe(5);
    expect(events.every((e) => toMicro(e.cost_micro) > 0 && !e.estimated)).toBe(true);
  });

  it('answers the Responses API (JSON, stream and compaction) with labelled demo replies, metered', async () => {
    const openai = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const before = (await app.t.db('usage_events').where({ key_id: keyId })).length;
    const res = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Hi!' });
    expect(res.output_text).toMatch(/^\[ModelBridge demo\].*OPENAI_API_KEY/);
    const final = await openai.responses.stream({ model: 'gpt-4o-mini', input: 'Hi!', max_output_tokens: 4 }).finalResponse();
    expect(final.status).toBe('incomplete');
    expect(final.usage?.output_tokens).toBe(4);
    expect((await openai.responses.compact({ model: 'gpt-4o-mini', input: 'Hi!' })).output[0]).toMatchObject({ type: 'compaction' });
    const events = (await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id')).slice(before);
    expect(events.map((e) => [e.endpoint, e.outcome, Boolean(e.estimated)])).toEqual([['/v1/responses', 'ok', false], ['/v1/responses', 'ok', false], ['/v1/responses/compact', 'ok', false]]);
    expect(events[1].output_tokens).toBe(4);
  });

  it('answers Anthropic requests too, streaming included', async () => {
    const anthropic = new Anthropic({ apiKey: secret, baseURL: app.url, maxRetries: 0 });
    const res = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 200, messages: [{ role: 'user', content: 'Hi!' }] });
    expect(res.content[0]).toMatchObject({ type: 'text', text: expect.stringMatching(/^\[ModelBridge demo\].*ANTHROPIC_API_KEY/) });
    const final = await anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 3, messages: [{ role: 'user', content: 'Hi!' }] }).finalMessage();
    expect(final.usage.output_tokens).toBe(3);
    const counted = await anthropic.messages.countTokens({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'Hi!' }] });
    expect(counted.input_tokens).toBeGreaterThan(0);
  });

  it('cannot be used directly, bypassing the proxy', async () => {
    for (const headers of [{}, { authorization: `Bearer ${secret}` }, { 'x-api-key': secret }] as Array<Record<string, string>>) {
      const r = await fetch(`${app.url}/demo/openai/v1/chat/completions`, { method: 'POST', headers, body: '{}' });
      expect(r.status).toBe(401);
      const a = await fetch(`${app.url}/demo/anthropic/v1/messages`, { method: 'POST', headers, body: '{}' });
      expect(a.status).toBe(401);
    }
  });
});
