import Anthropic from '@anthropic-ai/sdk';
import { countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { expectBilledAsReported as expectBilled, keyEvents } from '../support/usage-events.js';
import { proxyFixture } from '../support/proxy-fixture.js';

/**
 * OpenAI models from an Anthropic Messages client (Claude Code with ANTHROPIC_MODEL set to an OpenAI model): the
 * official @anthropic-ai/sdk → ModelBridge → a fake OpenAI upstream. Every bill is the upstream's reported usage at
 * the catalog's prices.
 */
const MODEL = 'gpt-4o-mini';
const ask = { model: MODEL, max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Hello, GPT' }] };
const editTool = { name: 'edit_file', description: 'Edit a file', input_schema: { type: 'object' as const, properties: { path: { type: 'string' } }, required: ['path'] } };

describe(`Anthropic Messages clients on OpenAI models (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let anthropic: Anthropic;
  let keyId: string;
  let mini: CatalogModel;
  const f = proxyFixture({ fake: { contentPieceChars: 4 }, nothingHeld: true });
  beforeAll(async () => {
    ({ fake, app, anthropic, keyId } = f);
    mini = (await app.services.models.find(MODEL))!;
  });
  const events = keyEvents(() => app, () => keyId);
  beforeEach(() => events.mark());
  const settledEvent = () => events.settled();
  const expectBilledAsReported = () => expectBilled({ events, fake, model: mini, api: 'openai', endpoint: '/v1/messages' });

  it('answers a message from Chat Completions, with the provider key and the system prompt first', async () => {
    const res = await anthropic.messages.create(ask);
    const sent = fake.requests[0]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer sk-o');
    expect(sent.body).toEqual({ model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hello, GPT' }] }], max_completion_tokens: 64 });
    const reported = await expectBilledAsReported();
    expect(res).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'end_turn', content: [{ type: 'text', text: 'tok '.repeat(reported.outputTokens) }] });
    expect(res.usage).toMatchObject({ input_tokens: reported.inputTokens, output_tokens: reported.outputTokens, cache_read_input_tokens: 0 });
  });

  it('reports OpenAI’s cached prompt tokens as cache reads, billed at the cached price', async () => {
    fake.setUsageDetails({ cacheReadTokens: 3 });
    const res = await anthropic.messages.create(ask);
    const reported = await expectBilledAsReported();
    expect(res.usage).toMatchObject({ input_tokens: reported.inputTokens, cache_read_input_tokens: 3 });
  });

  it('streams the Anthropic event sequence, which the SDK’s stream helper assembles, usage included', async () => {
    const stream = anthropic.messages.stream(ask);
    const types: string[] = [];
    stream.on('streamEvent', (e) => void types.push(e.type));
    const final = await stream.finalMessage();
    const reported = await expectBilledAsReported();
    expect(fake.requests[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(types[0]).toBe('message_start');
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(final.content).toEqual([{ type: 'text', text: 'tok '.repeat(reported.outputTokens) }]);
    expect(final.usage).toMatchObject({ input_tokens: reported.inputTokens, output_tokens: reported.outputTokens });
    expect(final.stop_reason).toBe('end_turn');
  });

  it('translates tools, streams tool_use with input_json_delta, and sends tool results back as tool messages', async () => {
    const args = JSON.stringify({ path: 'src/app.ts' });
    fake.setReplyContent({ toolCall: { id: 'call_1', name: 'edit_file', arguments: args } });
    const stream = anthropic.messages.stream({ ...ask, tools: [editTool], tool_choice: { type: 'any', disable_parallel_tool_use: true } });
    const jsonDeltas: string[] = [];
    stream.on('inputJson', (partial) => void jsonDeltas.push(partial));
    const final = await stream.finalMessage();
    expect(fake.requests[0]!.body).toMatchObject({
      tools: [{ type: 'function', function: { name: 'edit_file', description: 'Edit a file', parameters: editTool.input_schema } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    expect(jsonDeltas).toHaveLength(Math.ceil(args.length / 4));
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'edit_file', input: { path: 'src/app.ts' } }]);
    await expectBilledAsReported();

    fake.reset();
    await events.mark();
    fake.setReplyContent({ text: 'Done.' });
    const next = await anthropic.messages.create({
      ...ask,
      tools: [editTool],
      messages: [
        ...ask.messages,
        { role: 'assistant', content: final.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'edited' }, { type: 'text', text: 'Thanks' }] },
      ],
    });
    expect(fake.requests[0]!.body.messages.slice(2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'edit_file', arguments: args } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'edited' },
      { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
    ]);
    expect(next.content).toEqual([{ type: 'text', text: 'Done.' }]);
    await expectBilledAsReported();
  });

  it('counts tokens for Claude Code with the model’s tokenizer (OpenAI has no counting endpoint), for free', async () => {
    const counted = await anthropic.messages.countTokens({ model: MODEL, system: ask.system, messages: ask.messages });
    // Two messages (system, user) of 3 framing tokens each, 3 to prime the reply, and the text.
    expect(counted.input_tokens).toBe(2 * 3 + 3 + o200kTokens('Be brief.\nHello, GPT'));
    expect(fake.requests).toHaveLength(0);
    expect(await app.t.db('usage_events').where({ key_id: keyId })).toHaveLength(events.seen);
    expect(await app.t.db('holds')).toHaveLength(0);
    await expect(anthropic.messages.countTokens({ model: MODEL, messages: ask.messages, tools: [{ type: 'web_search_20250305', name: 'web_search' }] })).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });

  it('refuses a parameter it cannot translate with a 400 in the Anthropic format: nothing charged, the upstream never called', async () => {
    const refused = anthropic.messages.create({ ...ask, top_k: 5 } as Anthropic.MessageCreateParamsNonStreaming);
    await expect(refused).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(refused).rejects.toMatchObject({ error: { type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('top_k') } } });
    const serverTool = anthropic.messages.create({ ...ask, tools: [{ type: 'web_search_20250305', name: 'web_search' }] });
    await expect(serverTool).rejects.toMatchObject({ status: 400, error: { error: { message: expect.stringContaining('tools[0].type') } } });
    expect(fake.requests).toHaveLength(0);
    expect(await app.t.db('usage_events').where({ key_id: keyId })).toHaveLength(events.seen);
    expect(await app.t.db('holds')).toHaveLength(0);
  });

  it('answers an upstream 4xx in the Anthropic error format, with the provider’s message, charging nothing', async () => {
    fake.setMode('status:429');
    const failed = anthropic.messages.create(ask);
    await expect(failed).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    await expect(failed).rejects.toMatchObject({ error: { type: 'error', error: { type: 'rate_limit_error', message: 'Fake upstream error with status 429' } } });
    const event = await settledEvent();
    expect(event).toMatchObject({ outcome: 'upstream_error', http_status: 429 });
    expect(toMicro(event.cost_micro)).toBe(0);
  });

  it('ends a stream the upstream broke with an Anthropic error event saying what was charged', async () => {
    fake.setMode('error-mid-stream');
    const stream = await anthropic.messages.create({ ...ask, stream: true });
    const failure = (async () => {
      for await (const _ of stream);
    })();
    await expect(failure).rejects.toThrow(/fake/i);
    expect((await settledEvent()).outcome).toBe('upstream_error');
  });
});
