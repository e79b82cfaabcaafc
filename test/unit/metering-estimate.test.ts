import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tokenCost } from '../../src/domain/money.js';
import { tokenUsage } from '../../src/domain/models/pricing.js';
import { ENDPOINTS } from '../../src/proxy/endpoints.js';
import { approxTokens, DEFAULT_OUTPUT_BOUND, estimateRequest, IMAGE_TOKEN_BOUND, inputTokenBound, outputTokenBound, PRIMING_TOKENS } from '../../src/proxy/estimate.js';
import { anthropicProvider } from '../../src/proxy/upstreams/anthropic/index.js';
import { lastObjectValue } from '../../src/proxy/upstreams/json-usage.js';
import { openaiProvider } from '../../src/proxy/upstreams/openai/index.js';
import { SseSplitter } from '../../src/proxy/upstreams/sse.js';
import { expectedUsage } from '../support/fake-upstream.js';

describe('the estimate behind a hold', () => {
  it('bounds input tokens by the UTF-8 bytes of every string in the body (a token covers at least one byte)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ role: fc.constantFrom('user', 'assistant', 'system'), content: fc.string({ unit: 'binary' }) }), { minLength: 1, maxLength: 8 }), (messages) => {
        const body = { model: 'gpt-4o-mini', messages };
        const bytes = messages.reduce((s, m) => s + Buffer.byteLength(m.content, 'utf8'), 0);
        expect(inputTokenBound(body)).toBeGreaterThanOrEqual(bytes + PRIMING_TOKENS);
        expect(inputTokenBound(body)).toBeGreaterThanOrEqual(expectedUsage(body).inputTokens);
      }),
    );
  });

  it('counts an image part as a fixed bound, whatever its size, and token-id inputs one each', () => {
    const image = (url: string) => ({ model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] });
    expect(inputTokenBound(image('https://x/a.png'))).toBe(inputTokenBound(image(`data:image/png;base64,${'A'.repeat(100_000)}`)));
    expect(inputTokenBound(image('u'))).toBeGreaterThan(IMAGE_TOKEN_BOUND);
    expect(inputTokenBound({ model: 'e', input: [1, 2, 3, 4] }) - inputTokenBound({ model: 'e', input: [] })).toBe(4);
  });

  it('survives deeply nested bodies without recursion', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(inputTokenBound({ model: 'm', messages: deep as unknown[] })).toBeGreaterThan(4);
  });

  it('bounds output by max_tokens (or the model cap) times the completions asked for', () => {
    const parse = (body: Record<string, unknown>) => ENDPOINTS.chat.parse({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...body });
    expect(outputTokenBound(parse({ max_tokens: 100 }), { maxOutputTokens: 16_384 })).toBe(100);
    expect(outputTokenBound(parse({ max_tokens: 100, max_completion_tokens: 300 }), { maxOutputTokens: 16_384 })).toBe(300);
    expect(outputTokenBound(parse({ max_tokens: 100, n: 3 }), { maxOutputTokens: 16_384 })).toBe(300);
    expect(outputTokenBound(parse({}), { maxOutputTokens: 16_384 })).toBe(16_384);
    expect(outputTokenBound(parse({}), { maxOutputTokens: 0 })).toBe(DEFAULT_OUTPUT_BOUND);
    expect(outputTokenBound(ENDPOINTS.embeddings.parse({ model: 'e', input: 'x' }), { maxOutputTokens: 0 })).toBe(0);
    expect(approxTokens(10)).toBe(3);
  });

  it('clamps a max_tokens above the model’s cap to the cap: the provider never produces more', () => {
    const parse = (body: Record<string, unknown>) => ENDPOINTS.chat.parse({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...body });
    expect(outputTokenBound(parse({ max_tokens: 1_000_000 }), { maxOutputTokens: 16_384 })).toBe(16_384);
    expect(outputTokenBound(parse({ max_tokens: 1_000_000, n: 2 }), { maxOutputTokens: 16_384 })).toBe(32_768);
    expect(outputTokenBound(parse({ max_tokens: 1_000_000 }), { maxOutputTokens: 0 })).toBe(1_000_000);
  });

  it('marks a request unbounded when its body does not show what it costs', () => {
    const model = {
      id: 'm', provider: 'openai' as const, upstreamModel: 'm', inputMicroPerMTok: 1, outputMicroPerMTok: 1,
      cachedInputMicroPerMTok: null, cacheWriteMicroPerMTok: null, cacheWrite1hMicroPerMTok: null, maxOutputTokens: 100, enabled: true,
    };
    const unbounded = (body: Record<string, unknown>) =>
      estimateRequest(model, ENDPOINTS.chat.parse({ model: 'm', ...body }), { model: 'm', ...body }).unbounded;
    const said = (content: unknown) => ({ messages: [{ role: 'user', content }] });
    expect(unbounded(said('hello'))).toBe(false);
    expect(unbounded(said([{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }]))).toBe(false);
    expect(unbounded(said([{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'short' } }]))).toBe(false);
    expect(unbounded({ ...said('hi'), tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] })).toBe(false);
    // Content the provider fetches or stores, and tools it runs itself:
    expect(unbounded(said([{ type: 'file', file: { file_id: 'file-abc' } }]))).toBe(true);
    expect(unbounded(said([{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]))).toBe(true);
    expect(unbounded(said([{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }]))).toBe(true);
    expect(unbounded(said([{ type: 'document', source: { type: 'file', file_id: 'file_1' } }]))).toBe(true);
    expect(unbounded(said([{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } }]))).toBe(true);
    expect(unbounded({ ...said('hi'), tools: [{ type: 'web_search_20250305', name: 'web_search' }] })).toBe(true);
    expect(unbounded({ ...said('hi'), web_search_options: {} })).toBe(true);
    // Output with neither max_tokens nor a catalog cap:
    const plain = { model: 'm', ...said('hi') };
    expect(estimateRequest({ ...model, maxOutputTokens: 0 }, ENDPOINTS.chat.parse(plain), plain).unbounded).toBe(true);
  });

  it('rounds cost up to the next micro-AUD, per direction', () => {
    expect(tokenCost(1, 232_500)).toBe(1);
    expect(tokenCost(5, 232_500)).toBe(2); // 1.1625 → 2
    expect(tokenCost(8, 930_000)).toBe(8); // 7.44 → 8
    expect(tokenCost(1_000_000, 930_000)).toBe(930_000);
    expect(tokenCost(0, 930_000)).toBe(0);
  });
});

describe('reading usage', () => {
  it('finds the last top-level usage object without parsing the whole response', () => {
    const text = JSON.stringify({ choices: [{ message: { content: 'the "usage": {"prompt_tokens": 999} is a string' } }], data: [{ usage: { prompt_tokens: 1 } }], usage: { prompt_tokens: 7, completion_tokens: 3, details: { x: '}{' } } });
    expect(lastObjectValue(text, 'usage')).toEqual({ prompt_tokens: 7, completion_tokens: 3, details: { x: '}{' } });
    expect(openaiProvider.usageFromJson(text)).toEqual(tokenUsage({ inputTokens: 7, outputTokens: 3 }));
    expect(lastObjectValue('{"usage": {"prompt_tokens": 1', 'usage')).toBeNull();
    expect(lastObjectValue('{"id":"x"}', 'usage')).toBeNull();
    // Without the TTL split, cache writes are 5-minute ones.
    expect(anthropicProvider.usageFromJson('{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":4}}'))
      .toEqual(tokenUsage({ inputTokens: 10, cachedInputTokens: 5, cacheWrite5mTokens: 2, outputTokens: 4 }));
  });

  it('splits a stream into the same events however the network chunks it', () => {
    const events = ['data: {"a":1}', 'event: ping\ndata: {}', 'data: {"b":"x\\n"}', 'data: [DONE]'];
    const wire = events.map((e) => `${e}\n\n`).join('');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: wire.length }), { maxLength: 10 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const splitter = new SseSplitter();
        const seen: string[] = [];
        let from = 0;
        for (const p of [...points, wire.length]) {
          seen.push(...splitter.push(wire.slice(from, p)));
          from = p;
        }
        expect(seen).toEqual(events);
        expect(splitter.rest()).toBe('');
      }),
    );
    expect(new SseSplitter().push('data: 1\r\n\r\ndata: 2\n\n')).toEqual(['data: 1', 'data: 2']);
  });

  it('hides the forced OpenAI usage chunk only from a client that did not ask for it', () => {
    const chunks = ['data: {"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}', 'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}',
      'data: {"choices":[{"delta":{"content":" there"}}],"usage":null}', 'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}',
      'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}', 'data: [DONE]'];
    const hiding = openaiProvider.streamMeter({ clientWantsUsage: false, upstreamModel: 'gpt-4o-mini', choices: 1 });
    expect(chunks.map((c) => hiding.observe(c))).toEqual([true, true, true, true, false, true]);
    expect(hiding.usage).toEqual(tokenUsage({ inputTokens: 9, outputTokens: 2 }));
    expect(hiding.outputDeltas).toBe(2);
    const passing = openaiProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'gpt-4o-mini', choices: 1 });
    expect(chunks.every((c) => passing.observe(c))).toBe(true);
    expect(openaiProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'gpt-4o-mini', choices: 1 }).observe('data: {"error":{"message":"x"}}')).toBe(true);
  });

  it('reads Anthropic usage from message_start and message_delta', () => {
    const meter = anthropicProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'claude-haiku-4-5', choices: 1 });
    meter.observe('event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":12,"cache_read_input_tokens":3,"output_tokens":1}}}');
    expect(meter.reportedInput).toEqual({ inputTokens: 12, cachedInputTokens: 3, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0 });
    expect(meter.usage).toBeNull();
    meter.observe('event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"a"}}');
    meter.observe('event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"b"}}');
    expect(meter.outputDeltas).toBe(2);
    meter.observe('event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":5}}');
    expect(meter.usage).toEqual(tokenUsage({ inputTokens: 12, cachedInputTokens: 3, outputTokens: 5 }));
    meter.observe('event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}');
    expect(meter.failed).toBe(true);
  });

  it('asks an OpenAI upstream for stream usage, keeping the client’s other stream options', () => {
    const body: Record<string, unknown> = { stream: true, stream_options: { include_obfuscation: false } };
    expect(openaiProvider.adaptBody('chat', body)).toBe(true);
    expect(body.stream_options).toEqual({ include_obfuscation: false, include_usage: true });
    expect(openaiProvider.adaptBody('chat', body)).toBe(false);
    expect(openaiProvider.adaptBody('chat', { stream: false })).toBe(false);
    expect(openaiProvider.adaptBody('embeddings', { stream: true })).toBe(false);
  });
});
