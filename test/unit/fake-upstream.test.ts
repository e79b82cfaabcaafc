import { describe, it, expect, beforeAll, afterAll, beforeEach, vi } from 'vitest';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeUpstream, expectedUsage, type FakeUpstream } from '../support/fake-upstream.js';

let fake: FakeUpstream;
let openai: OpenAI;
let anthropic: Anthropic;

const SLOW_MS = 150;
const DRIP_MS = 40;

beforeAll(async () => {
  fake = await startFakeUpstream({ slowMs: SLOW_MS, dripMs: DRIP_MS, slowChunkMs: 10 });
  openai = new OpenAI({ apiKey: 'sk-openai-test', baseURL: fake.openaiBaseUrl, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseUrl, maxRetries: 0 });
});
afterAll(async () => { await fake.close(); });
beforeEach(() => { fake.reset(); });

const chatBody = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Say hello to the fake upstream' }] };
const msgBody = { model: 'claude-sonnet-4-6', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Say hello' }] };
const mode = (m: string) => ({ headers: { 'x-fake-mode': m } });

describe('expectedUsage', () => {
  it('uses ceil(chars/4), min 1, and min(limit, replyTokens)', () => {
    expect(expectedUsage({ messages: [{ role: 'user', content: '12345' }] })).toEqual({ inputTokens: 2, outputTokens: 8 });
    expect(expectedUsage({ messages: [{ role: 'user', content: '' }] })).toEqual({ inputTokens: 1, outputTokens: 8 });
    expect(expectedUsage({ messages: [], max_tokens: 3 })).toEqual({ inputTokens: 1, outputTokens: 3 });
    expect(expectedUsage({ messages: [], max_completion_tokens: 5 }, 20)).toEqual({ inputTokens: 1, outputTokens: 5 });
    expect(expectedUsage({ messages: [] }, 100).outputTokens).toBe(16);
    // text parts, nested tool_result content and a top-level system prompt all count
    const body = { system: [{ type: 'text', text: 'abcd' }], messages: [
      { role: 'user', content: [{ type: 'text', text: 'abcd' }, { type: 'image_url', image_url: { url: 'x'.repeat(99) } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'abcde' }] }] }] };
    expect(expectedUsage(body).inputTokens).toBe(4); // 13 chars
    expect(expectedUsage({ model: 'e', input: ['abcd', 'efgh1'] })).toEqual({ inputTokens: 3, outputTokens: 0 });
    expect(expectedUsage({ model: 'e', input: [1, 2, 3] })).toEqual({ inputTokens: 3, outputTokens: 0 });
  });
});

describe('OpenAI format', () => {
  it('answers non-streaming chat completions with deterministic usage and records the request', async () => {
    const res = await openai.chat.completions.create(chatBody);
    const exp = expectedUsage(chatBody);
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('gpt-4o-mini');
    expect(res.choices[0]!.message.content).toBe('tok '.repeat(exp.outputTokens));
    expect(res.choices[0]!.finish_reason).toBe('stop');
    expect(res.usage).toMatchObject({ prompt_tokens: exp.inputTokens, completion_tokens: exp.outputTokens,
      total_tokens: exp.inputTokens + exp.outputTokens });
    expect(fake.served).toBe(1);
    const rec = fake.requests[0]!;
    expect(rec).toMatchObject({ method: 'POST', path: '/v1/chat/completions', mode: 'ok', outcome: 'completed' });
    expect(rec.headers.authorization).toBe('Bearer sk-openai-test');
    expect(rec.body).toEqual(chatBody);
  });

  it('caps output at max_tokens with finish_reason length', async () => {
    const res = await openai.chat.completions.create({ ...chatBody, max_tokens: 3 });
    expect(res.usage!.completion_tokens).toBe(3);
    expect(res.choices[0]!.finish_reason).toBe('length');
  });

  it('streams one delta per token and a final usage chunk when include_usage is set', async () => {
    const body = { ...chatBody, stream: true as const, stream_options: { include_usage: true } };
    const chunks = [];
    for await (const c of await openai.chat.completions.create(body)) chunks.push(c);
    const exp = expectedUsage(body);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const deltas = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(deltas).toHaveLength(exp.outputTokens);
    expect(deltas.every((c) => c.choices[0]!.delta.content === 'tok ')).toBe(true);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: exp.inputTokens, completion_tokens: exp.outputTokens });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(fake.served).toBe(1);
  });

  it('streams without usage when include_usage is not set, ending with data: [DONE]', async () => {
    const r = await fetch(`${fake.openaiBaseUrl}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...chatBody, stream: true }) });
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await r.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(text).not.toContain('"usage"');
    expect(text.match(/"content":"tok "/g)).toHaveLength(8);
  });

  it('serves embeddings in float and base64 (the SDK default) with usage', async () => {
    const body = { model: 'text-embedding-3-small', input: ['hello', 'world!'] };
    const exp = expectedUsage(body);
    const viaSdk = await openai.embeddings.create(body); // the SDK asks for base64 and decodes it
    expect(fake.requests[0]!.body.encoding_format).toBe('base64');
    const asFloat = await openai.embeddings.create({ ...body, encoding_format: 'float', dimensions: 4 });
    expect(viaSdk.data).toHaveLength(2);
    expect(viaSdk.data[1]!.index).toBe(1);
    expect(viaSdk.data[0]!.embedding).toHaveLength(8);
    expect(asFloat.data[0]!.embedding).toHaveLength(4);
    expect(asFloat.data[0]!.embedding[0]).toBeCloseTo(viaSdk.data[0]!.embedding[0]!, 4);
    expect(viaSdk.usage).toEqual({ prompt_tokens: exp.inputTokens, total_tokens: exp.inputTokens });
  });

  it('lists models in both formats', async () => {
    const ids = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toContain('gpt-4o-mini');
    const page = await anthropic.models.list();
    expect(page.data.map((m) => m.id)).toContain('claude-sonnet-4-6');
    expect(page.data[0]!.type).toBe('model');
  });

  it('rejects invalid bodies and unknown paths in OpenAI format', async () => {
    await expect(openai.chat.completions.create({ model: 'x' } as never)).rejects.toMatchObject({ status: 400, type: 'invalid_request_error' });
    const r = await fetch(`${fake.url}/v1/nope`, { method: 'POST', body: '{}' });
    expect(r.status).toBe(404);
    expect((await r.json()).error.type).toBe('invalid_request_error');
    expect(fake.served).toBe(0);
  });
});

describe('Anthropic format', () => {
  it('answers non-streaming messages with usage and records the key', async () => {
    const res = await anthropic.messages.create(msgBody);
    const exp = expectedUsage(msgBody);
    expect(res.type).toBe('message');
    expect(res.content).toEqual([{ type: 'text', text: 'tok '.repeat(exp.outputTokens) }]);
    expect(res.stop_reason).toBe('end_turn');
    expect(res.usage).toMatchObject({ input_tokens: exp.inputTokens, output_tokens: exp.outputTokens });
    const rec = fake.requests[0]!;
    // this SDK version sends `Authorization: Bearer`; older ones sent `x-api-key`
    expect(rec.headers['x-api-key'] ?? rec.headers.authorization).toMatch(/^(Bearer )?sk-ant-test$/);
    expect(rec.headers['anthropic-version']).toBeTruthy();
    expect(fake.served).toBe(1);
  });

  it('streams the real event sequence', async () => {
    const body = { ...msgBody, max_tokens: 5, stream: true as const };
    const events = [];
    for await (const e of await anthropic.messages.create(body)) events.push(e);
    const types = events.map((e) => e.type);
    // the SDK drops `ping` events (they are on the wire, see the next test)
    expect(types).toEqual(['message_start', 'content_block_start', ...Array(5).fill('content_block_delta'),
      'content_block_stop', 'message_delta', 'message_stop']);
    const start = events[0] as Anthropic.RawMessageStartEvent;
    expect(start.message.usage.input_tokens).toBe(expectedUsage(body).inputTokens);
    const delta = events.at(-2) as Anthropic.RawMessageDeltaEvent;
    expect(delta.usage.output_tokens).toBe(5);
    expect(delta.delta.stop_reason).toBe('max_tokens');
  });

  it('works with the SDK stream helper and uses event: lines on the wire', async () => {
    const final = await anthropic.messages.stream(msgBody).finalMessage();
    expect(fake.expectedUsage(msgBody)).toEqual({ inputTokens: 5, outputTokens: 8 }); // 18 chars incl. system
    expect(final.usage).toMatchObject({ input_tokens: 5, output_tokens: 8 });
    const r = await fetch(`${fake.url}/v1/messages`, { method: 'POST', body: JSON.stringify({ ...msgBody, stream: true }) });
    const text = await r.text();
    expect(text.startsWith('event: message_start\ndata: {')).toBe(true);
    expect(text.match(/^event: (\w+)$/gm)!.map((l) => l.slice(7)).slice(0, 4)).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_delta']);
    expect(text.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')).toBe(true);
  });

  it('counts tokens', async () => {
    const res = await anthropic.messages.countTokens({ model: msgBody.model, messages: msgBody.messages, system: msgBody.system });
    expect(res.input_tokens).toBe(expectedUsage(msgBody).inputTokens);
  });
});

describe('modes', () => {
  it('error: 500 in each endpoint format', async () => {
    fake.setMode('error');
    await expect(openai.chat.completions.create(chatBody)).rejects.toMatchObject({ status: 500, type: 'server_error' });
    await expect(anthropic.messages.create(msgBody)).rejects.toMatchObject({ status: 500, error: { type: 'error', error: { type: 'api_error' } } });
    expect(fake.served).toBe(0);
  });

  it('status:<code> passes the code through; the header wins over setMode', async () => {
    fake.setMode('error');
    await expect(openai.chat.completions.create(chatBody, mode('status:429'))).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(openai.embeddings.create({ model: 'e', input: 'x' }, mode('status:400'))).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(anthropic.messages.create(msgBody, mode('status:529'))).rejects.toMatchObject({ status: 529, error: { error: { type: 'overloaded_error' } } });
    await expect(anthropic.messages.create(msgBody, mode('ok'))).resolves.toMatchObject({ type: 'message' });
    expect(fake.requests.map((r) => r.mode)).toEqual(['status:429', 'status:400', 'status:529', 'ok']);
  });

  it('setMode can target one model; reset() restores ok', async () => {
    fake.setMode('status:404', 'gpt-4o');
    await expect(openai.chat.completions.create({ ...chatBody, model: 'gpt-4o' })).rejects.toMatchObject({ status: 404 });
    await expect(openai.chat.completions.create(chatBody)).resolves.toBeTruthy();
    expect(() => fake.setMode('nonsense' as never)).toThrow();
    fake.reset();
    await expect(openai.chat.completions.create({ ...chatBody, model: 'gpt-4o' })).resolves.toBeTruthy();
    expect(fake.requests).toHaveLength(1);
  });

  it('slow: delays the response headers', async () => {
    fake.setMode('slow');
    const t0 = performance.now();
    await openai.chat.completions.create(chatBody);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(SLOW_MS - 5);
    const t1 = performance.now();
    for await (const _ of await anthropic.messages.create({ ...msgBody, stream: true })) { /* drain */ }
    expect(performance.now() - t1).toBeGreaterThanOrEqual(SLOW_MS - 5);
    expect(fake.served).toBe(2);
  });

  it('hang: never answers, and the client disconnecting is recorded', async () => {
    const client = new OpenAI({ apiKey: 'k', baseURL: fake.openaiBaseUrl, maxRetries: 0, timeout: 200 });
    await expect(client.chat.completions.create(chatBody, mode('hang'))).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await vi.waitFor(() => expect(fake.requests[0]!.outcome).toBe('client-closed'));
    expect(fake.served).toBe(0);
  });

  it('abort-mid-stream: sends two tokens, then cuts the connection', async () => {
    fake.setMode('abort-mid-stream');
    const got: string[] = [];
    await expect((async () => {
      for await (const c of await openai.chat.completions.create({ ...chatBody, stream: true })) got.push(c.choices[0]?.delta.content ?? '');
    })()).rejects.toThrow();
    expect(got.join('')).toBe('tok tok ');
    const events: string[] = [];
    await expect((async () => {
      for await (const e of await anthropic.messages.create({ ...msgBody, stream: true })) events.push(e.type);
    })()).rejects.toThrow();
    expect(events).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta']);
    await expect(openai.chat.completions.create(chatBody)).rejects.toThrow(); // non-streaming: truncated body
    expect(fake.requests.map((r) => r.outcome)).toEqual(['aborted', 'aborted', 'aborted']);
    expect(fake.served).toBe(0);
  });

  it('drip: one chunk every dripMs; a client abort is seen by the upstream', async () => {
    fake.setMode('drip');
    const started = performance.now();
    const stream = await openai.chat.completions.create({ ...chatBody, stream: true });
    const times: number[] = [];
    for await (const _ of stream) {
      times.push(performance.now());
      if (times.length === 3) stream.controller.abort();
    }
    expect(times).toHaveLength(3);
    // The third chunk waited for two pauses (measured from the start: a loaded client may read chunks in bunches).
    expect(times[2]! - started).toBeGreaterThanOrEqual(2 * DRIP_MS - 2);
    await vi.waitFor(() => expect(fake.requests[0]!.outcome).toBe('client-closed'));
    expect(fake.served).toBe(0);
    const full = await openai.chat.completions.create({ ...chatBody, max_tokens: 2 }); // non-streaming drip completes
    expect(full.usage!.completion_tokens).toBe(2);
    expect(fake.served).toBe(1);
  });

  it('late-usage: pauses between the end of generation and the usage report; counts the tokens sent', async () => {
    const late = await startFakeUpstream({ lateUsageMs: 150, tokensPerDelta: 3 });
    try {
      late.setMode('late-usage');
      const client = new OpenAI({ apiKey: 'k', baseURL: late.openaiBaseUrl, maxRetries: 0 });
      const at: Record<string, number> = {};
      const contents: string[] = [];
      for await (const c of await client.chat.completions.create({ ...chatBody, stream: true, stream_options: { include_usage: true } })) {
        if (c.choices[0]?.delta.content) contents.push(c.choices[0].delta.content);
        if (c.choices[0]?.finish_reason) at.finish = performance.now();
        if (c.usage) at.usage = performance.now();
      }
      expect(contents).toEqual(['tok tok tok ', 'tok tok tok ', 'tok tok ']);
      // The pause is measured where it happens: a loaded machine may hand the client both chunks at once.
      expect(at.usage!).toBeGreaterThanOrEqual(at.finish!);
      const types: Array<[string, number]> = [];
      for await (const e of await new Anthropic({ apiKey: 'k', baseURL: late.anthropicBaseUrl, maxRetries: 0 }).messages.create({ ...msgBody, stream: true }))
        types.push([e.type, performance.now()]);
      const [delta, stop] = [types.find(([t]) => t === 'message_delta')!, types.find(([t]) => t === 'message_stop')!];
      expect(stop[1]).toBeGreaterThanOrEqual(delta[1]);
      expect(late.requests.map((r) => [r.outcome, r.tokensSent])).toEqual([['completed', 8], ['completed', 8]]);
      for (const r of late.requests) expect(r.lateUsagePauseMs).toBeGreaterThanOrEqual(149);
    } finally { await late.close(); }
  });
});

describe('lifecycle', () => {
  it('checks the API key when configured', async () => {
    const guarded = await startFakeUpstream({ apiKey: 'right' });
    try {
      const bad = new OpenAI({ apiKey: 'wrong', baseURL: guarded.openaiBaseUrl, maxRetries: 0 });
      await expect(bad.chat.completions.create(chatBody)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const good = new Anthropic({ apiKey: 'right', baseURL: guarded.anthropicBaseUrl, maxRetries: 0 });
      await expect(good.messages.create(msgBody)).resolves.toMatchObject({ type: 'message' });
    } finally { await guarded.close(); }
  });

  it('close() returns promptly even with hanging requests and kept-alive sockets', async () => {
    const other = await startFakeUpstream({ replyTokens: 2 });
    await fetch(`${other.url}/v1/models`).then((r) => r.text()); // leaves an idle keep-alive socket
    const pending = fetch(`${other.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-fake-mode': 'hang' }, body: JSON.stringify(chatBody) })
      .then(() => 'answered', (e: unknown) => e);
    await vi.waitFor(() => expect(other.requests).toHaveLength(2));
    const t0 = performance.now();
    await other.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
    expect(other.requests[1]!.outcome).toBe('client-closed');
  });
});
