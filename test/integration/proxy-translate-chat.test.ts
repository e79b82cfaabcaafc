import OpenAI from 'openai';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { expectBilledAsReported as expectBilled, keyEvents } from '../support/usage-events.js';
import { proxyFixture } from '../support/proxy-fixture.js';

/**
 * Claude models from an OpenAI Chat Completions client (Cursor, LangChain's ChatOpenAI): the official openai SDK →
 * ModelBridge → a fake Anthropic upstream. Every bill is the upstream's reported usage at the catalog's prices.
 */
const MODEL = 'claude-haiku-4-5';
const ask = { model: MODEL, messages: [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hello, Claude' }], max_tokens: 64 };
const weatherTool = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe(`OpenAI Chat clients on Anthropic models (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let openai: OpenAI;
  let keyId: string;
  let haiku: CatalogModel;
  const f = proxyFixture({ fake: { dripMs: 40, contentPieceChars: 5 }, nothingHeld: true });
  beforeAll(async () => {
    ({ fake, app, openai, keyId } = f);
    haiku = (await app.services.models.find(MODEL))!;
  });
  const events = keyEvents(() => app, () => keyId);
  beforeEach(() => events.mark());
  const settledEvent = () => events.settled();
  const expectBilledAsReported = () => expectBilled({ events, fake, model: haiku, api: 'anthropic', endpoint: '/v1/chat/completions' });

  it('answers a plain chat completion from the Messages API, system prompt and all', async () => {
    const res = await openai.chat.completions.create(ask);
    const sent = fake.requests[0]!;
    expect(sent.path).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe('sk-a');
    expect(sent.body).toEqual({ model: MODEL, system: [{ type: 'text', text: 'Be brief.' }], messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello, Claude' }] }], max_tokens: 64 });
    const reported = await expectBilledAsReported();
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'tok '.repeat(reported.outputTokens) } });
    expect(res.usage).toMatchObject({ prompt_tokens: reported.inputTokens, completion_tokens: reported.outputTokens });
  });

  it('asks for the catalog’s output cap when the client gives no max_tokens (Anthropic requires one)', async () => {
    await openai.chat.completions.create({ model: MODEL, messages: ask.messages });
    expect(fake.requests[0]!.body.max_tokens).toBe(haiku.maxOutputTokens);
    await expectBilledAsReported();
  });

  it('reports cache reads and writes as OpenAI usage, billed at the cache prices', async () => {
    fake.setUsageDetails({ cacheReadTokens: 3, cacheWrite5mTokens: 2 });
    const res = await openai.chat.completions.create(ask);
    const reported = await expectBilledAsReported();
    const prompt = reported.inputTokens + reported.cachedInputTokens + reported.cacheWrite5mTokens;
    expect(res.usage).toMatchObject({ prompt_tokens: prompt, prompt_tokens_details: { cached_tokens: 3 }, total_tokens: prompt + reported.outputTokens });
  });

  it('streams chunks and [DONE], with the usage chunk when include_usage is asked', async () => {
    const stream = await openai.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const reported = await expectBilledAsReported();
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('tok '.repeat(reported.outputTokens));
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: reported.inputTokens, completion_tokens: reported.outputTokens } });
  });

  it('streams without a usage chunk when the client did not ask, billed all the same', async () => {
    const stream = await openai.chat.completions.create({ ...ask, stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.choices.length === 1 && !c.usage)).toBe(true);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    await expectBilledAsReported();
  });

  it('translates tools and tool_choice, and streams the call’s argument deltas the SDK helper assembles', async () => {
    const args = JSON.stringify({ city: 'Hobart, Tasmania' });
    fake.setReplyContent({ toolCall: { id: 'toolu_01', name: 'get_weather', arguments: args } });
    const stream = openai.chat.completions.stream({ ...ask, tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false });
    let argumentDeltas = 0;
    stream.on('tool_calls.function.arguments.delta', (e) => void (e.arguments_delta !== '' && argumentDeltas++));
    const final = await stream.finalChatCompletion();
    expect(fake.requests[0]!.body).toMatchObject({
      tools: [{ name: 'get_weather', description: 'The weather in a city', input_schema: weatherTool.function.parameters }],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    });
    expect(argumentDeltas).toBe(Math.ceil(args.length / 5));
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(final.choices[0]!.message.tool_calls).toEqual([{ id: 'toolu_01', type: 'function', function: { name: 'get_weather', arguments: args } }]);
    await expectBilledAsReported();
  });

  it('sends the assistant’s tool calls and the tool results back as tool_use and tool_result blocks', async () => {
    const res = await openai.chat.completions.create({
      ...ask,
      tools: [weatherTool],
      messages: [
        ...ask.messages,
        { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_01', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Hobart"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_01', content: '12°C and windy' },
        { role: 'user', content: [{ type: 'text', text: 'And tomorrow?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
      ],
    });
    expect(fake.requests[0]!.body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Hello, Claude' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Hobart' } }] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'toolu_01', content: '12°C and windy' },
        { type: 'text', text: 'And tomorrow?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      ] },
    ]);
    expect(res.choices[0]!.message.content).toMatch(/^(tok )+$/);
    await expectBilledAsReported();
  });

  it('asks for JSON schema output (output_config.format) and returns the JSON the SDK parses', async () => {
    fake.setReplyContent({ text: '{"city":"Hobart","celsius":12}' });
    const schema = { type: 'object', properties: { city: { type: 'string' }, celsius: { type: 'number' } }, required: ['city', 'celsius'], additionalProperties: false };
    const res = await openai.chat.completions.parse({ ...ask, response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } } });
    expect(fake.requests[0]!.body.output_config).toEqual({ format: { type: 'json_schema', schema } });
    expect(res.choices[0]!.message.parsed).toEqual({ city: 'Hobart', celsius: 12 });
    await expectBilledAsReported();
  });

  it('turns reasoning_effort into extended thinking with a budget below max_tokens', async () => {
    await openai.chat.completions.create({ ...ask, max_tokens: 3000, reasoning_effort: 'high' });
    expect(fake.requests[0]!.body).toMatchObject({ max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 2999 } });
    await expectBilledAsReported();
  });

  it('refuses a parameter it cannot translate with a 400 naming it: nothing held or charged, the upstream never called', async () => {
    const refused = openai.chat.completions.create({ ...ask, logit_bias: { '50256': -100 } });
    await expect(refused).rejects.toMatchObject({ status: 400, error: { message: expect.stringContaining('logit_bias'), type: 'invalid_request_error' } });
    await expect(openai.chat.completions.create({ ...ask, n: 2 })).rejects.toMatchObject({ status: 400, error: { message: expect.stringMatching(/^n: /) } });
    await expect(openai.chat.completions.create({ ...ask, temperature: 1.5 })).rejects.toMatchObject({ status: 400, error: { message: expect.stringContaining('temperature') } });
    expect(fake.requests).toHaveLength(0);
    expect(await app.t.db('usage_events').where({ key_id: keyId })).toHaveLength(events.seen);
    expect(await app.t.db('holds')).toHaveLength(0);
  });

  it('forwards the anthropic-beta features an OpenAI client sends, and refuses a malformed one before admission', async () => {
    await openai.chat.completions.create(ask, { headers: { 'anthropic-beta': 'context-1m-2025-08-07' } });
    expect(fake.requests[0]!.headers['anthropic-beta']).toBe('context-1m-2025-08-07');
    await expectBilledAsReported();
    await events.mark();
    fake.reset();
    await expect(openai.chat.completions.create(ask, { headers: { 'anthropic-beta': 'not a feature!' } })).rejects.toMatchObject({ status: 400, error: { message: expect.stringContaining('anthropic-beta') } });
    expect(fake.requests).toHaveLength(0);
    expect(await app.t.db('usage_events').where({ key_id: keyId })).toHaveLength(events.seen);
  });

  it('answers an upstream 4xx in the OpenAI error format, with the provider’s message, charging nothing', async () => {
    fake.setMode('status:400');
    const failed = openai.chat.completions.create(ask);
    await expect(failed).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(failed).rejects.toMatchObject({ status: 400, error: { message: 'Fake upstream error with status 400', type: 'invalid_request_error', code: 'invalid_request_error' } });
    const event = await settledEvent();
    expect(event).toMatchObject({ outcome: 'upstream_error', http_status: 400 });
    expect(toMicro(event.cost_micro)).toBe(0);
  });

  it('answers an upstream overload with its status in the OpenAI format', async () => {
    fake.setMode('status:529');
    await expect(openai.chat.completions.create(ask)).rejects.toMatchObject({ status: 529, error: { type: 'server_error', code: 'upstream_overloaded' } });
    expect(toMicro((await settledEvent()).cost_micro)).toBe(0);
  });

  it('ends a translated stream the upstream broke with OpenAI’s error chunk saying what was charged', async () => {
    fake.setMode('abort-mid-stream');
    const stream = await openai.chat.completions.create({ ...ask, stream: true });
    const content: string[] = [];
    const failure = (async () => {
      for await (const c of stream) content.push(c.choices[0]?.delta.content ?? '');
    })();
    await expect(failure).rejects.toThrow(/upstream failed mid-stream; you were charged for what you received/);
    expect(content.join('')).toBe('tok tok ');
    const event = await settledEvent();
    const reported = fake.expectedTokens(fake.requests[0]!.body, 'anthropic');
    expect(event).toMatchObject({ outcome: 'upstream_error', input_tokens: reported.inputTokens });
    expect(Boolean(event.estimated)).toBe(true);
    expect(Number(event.output_tokens)).toBeGreaterThanOrEqual(2);
  });

  it('charges a client that leaves a translated stream mid-way by the existing rules (message_start’s input, the output received)', async () => {
    fake.setMode('drip');
    fake.setReplyTokens(40);
    const stream = await openai.chat.completions.create({ ...ask, max_tokens: 50, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 4) stream.controller.abort();
    await vi.waitFor(() => expect(fake.requests[0]?.outcome).toBe('client-closed'), { timeout: 5_000 });
    const sent = fake.requests[0]!.tokensSent;
    const reported = fake.expectedTokens(fake.requests[0]!.body, 'anthropic');
    const event = await settledEvent();
    expect(event).toMatchObject({ outcome: 'client_aborted', http_status: 499, input_tokens: reported.inputTokens });
    expect(Boolean(event.estimated)).toBe(true);
    expect(event.output_tokens).toBeGreaterThanOrEqual(sent - 1);
    expect(event.output_tokens).toBeLessThanOrEqual(50);
  });
});
