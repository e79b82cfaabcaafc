import fc from 'fast-check';
import { countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { anthropicProvider } from '../../src/proxy/upstreams/anthropic/index.js';
import { openaiProvider } from '../../src/proxy/upstreams/openai/index.js';
import { countTokens, encodingOf, WINDOW_CHARS } from '../../src/proxy/upstreams/openai/tokens.js';

const PLAIN = { disallowedSpecial: new Set<string>() };
const NO_CAP = Number.MAX_SAFE_INTEGER;

/** Text as a model streams it: words, whitespace runs, non-Latin scripts, long runs without a space. */
const prose = fc.array(fc.constantFrom('tok', ' ', '  ', '\n', '\n\n', 'Hello', ' world', ',', 'é', '日本語', '—', '🙂', '\t', '"', '\\', 'x'.repeat(300), '<|endoftext|>'), { maxLength: 1_500 })
  .map((words) => words.join(''));
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), prose);

/** `text` cut at random places into the deltas of a stream. */
const streamed = anyText.chain((text) =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, text.length - 1) }), { maxLength: 40 }).map((cuts) => {
    const at = [0, ...cuts.filter((c) => c < text.length).sort((a, b) => a - b), text.length];
    const deltas: string[] = [];
    for (let i = 1; i < at.length; i++) if (at[i]! > at[i - 1]!) deltas.push(text.slice(at[i - 1], at[i]));
    return { text, deltas };
  }));

const openaiChunk = (delta: Record<string, unknown>, finish: string | null = null, index = 0) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index, delta, logprobs: null, finish_reason: finish }], usage: null })}`;
const anthropicEvent = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}`;

function openaiMeter(upstreamModel = 'gpt-4o', choices = 1) {
  return openaiProvider.streamMeter({ clientWantsUsage: false, upstreamModel, choices });
}
function anthropicMeter() {
  return anthropicProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'claude-sonnet-4-6', choices: 1 });
}

describe('OpenAI stream meter: the output bound of a stream that ends early', () => {
  it('is never below the tokenizer’s count of the text received, nor below its content chunks', async () => {
    await fc.assert(fc.asyncProperty(streamed, fc.constantFrom('gpt-4o-mini', 'gpt-4'), async ({ text, deltas }, model) => {
      const meter = openaiMeter(model);
      meter.observe(openaiChunk({ role: 'assistant', content: '', refusal: null }));
      for (const d of deltas) meter.observe(openaiChunk({ content: d }));
      const bound = await meter.outputTokensBound(NO_CAP);
      const exact = (model === 'gpt-4' ? cl100kTokens : o200kTokens)(text, PLAIN);
      expect(bound).toBeGreaterThanOrEqual(exact);
      expect(bound).toBeGreaterThanOrEqual(deltas.length);
    }), { numRuns: 150 });
  });

  it('counts tool-call arguments and refusals, and stops at the cap', async () => {
    const meter = openaiMeter();
    meter.observe(openaiChunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }));
    meter.observe(openaiChunk({ tool_calls: [{ index: 0, function: { arguments: '{"city": "Hobart, Tasmania", "unit": "celsius"}' } }] }));
    meter.observe(openaiChunk({ refusal: 'I can’t help with that.' }));
    const generated = o200kTokens('get_weather') + o200kTokens('{"city": "Hobart, Tasmania", "unit": "celsius"}') + o200kTokens('I can’t help with that.');
    expect(await meter.outputTokensBound(NO_CAP)).toBe(generated);
    expect(meter.outputDeltas).toBe(3);
    expect(await meter.outputTokensBound(5)).toBe(5);
  });

  it('is finished only once every choice asked for has its finish_reason', () => {
    const meter = openaiMeter('gpt-4o', 2);
    meter.observe(openaiChunk({ content: 'a' }, null, 0));
    meter.observe(openaiChunk({}, 'stop', 0));
    expect(meter.finished).toBe(false);
    meter.observe(openaiChunk({ content: 'b' }, null, 1));
    meter.observe(openaiChunk({}, 'length', 1));
    expect(meter.finished).toBe(true);
    const single = openaiMeter();
    single.observe(openaiChunk({ content: 'a' }));
    expect(single.finished).toBe(false);
    single.observe(openaiChunk({}, 'tool_calls'));
    expect(single.finished).toBe(true);
  });
});

describe('Anthropic stream meter: the output bound of a stream that ends early', () => {
  it('is at least the UTF-8 bytes of the text received, so at least the tokens of any tokenisation of it', async () => {
    await fc.assert(fc.asyncProperty(streamed, fc.constantFrom('text_delta', 'input_json_delta', 'thinking_delta'), async ({ text, deltas }, type) => {
      const meter = anthropicMeter();
      const field = type === 'text_delta' ? 'text' : type === 'input_json_delta' ? 'partial_json' : 'thinking';
      meter.observe(anthropicEvent('message_start', { message: { usage: { input_tokens: 9, output_tokens: 1 } } }));
      for (const d of deltas) meter.observe(anthropicEvent('content_block_delta', { index: 0, delta: { type, [field]: d } }));
      const bound = await meter.outputTokensBound(NO_CAP);
      // Every token covers at least one byte, whatever the tokenizer: bytes ≥ tokens.
      expect(bound).toBeGreaterThanOrEqual(Buffer.byteLength(text, 'utf8'));
      expect(bound).toBeGreaterThanOrEqual(deltas.length);
      expect(bound).toBeGreaterThanOrEqual(o200kTokens(text, PLAIN));
      expect(meter.usage).toBeNull();
    }), { numRuns: 150 });
  });

  it('counts a tool’s name, not signatures; is capped', async () => {
    const meter = anthropicMeter();
    meter.observe(anthropicEvent('content_block_start', { index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } }));
    meter.observe(anthropicEvent('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'EqQBCgIYAhIM'.repeat(20) } }));
    expect(await meter.outputTokensBound(NO_CAP)).toBe('get_weather'.length);
    expect(await meter.outputTokensBound(4)).toBe(4);
  });

  it('is finished at message_delta’s stop_reason or message_stop', () => {
    const meter = anthropicMeter();
    meter.observe(anthropicEvent('message_delta', { delta: {}, usage: { output_tokens: 3 } }));
    expect(meter.finished).toBe(false);
    meter.observe(anthropicEvent('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }));
    expect(meter.finished).toBe(true);
    const other = anthropicMeter();
    other.observe(anthropicEvent('message_stop', {}));
    expect(other.finished).toBe(true);
  });
});

describe('OpenAI tokenizers', () => {
  it('chooses o200k_base for gpt-4o and newer, cl100k_base for gpt-3.5 and gpt-4', () => {
    for (const m of ['gpt-4o', 'gpt-4o-mini', 'chatgpt-4o-latest', 'gpt-4.1-nano', 'gpt-4.5-preview', 'gpt-5', 'o1', 'o3-mini', 'o4-mini', 'ft:gpt-4o-mini:acme::x', 'llama-3'])
      expect(encodingOf(m), m).toBe('o200k_base');
    for (const m of ['gpt-4', 'gpt-4-0613', 'gpt-4-turbo', 'gpt-4-32k', 'gpt-3.5-turbo', 'gpt-35-turbo', 'ft:gpt-3.5-turbo:acme::x', 'openai/gpt-4'])
      expect(encodingOf(m), m).toBe('cl100k_base');
  });

  it('counts a long text window by window, never below its whole count, and stops at a limit', async () => {
    const text = `${'word '.repeat(WINDOW_CHARS)}${'x'.repeat(3 * WINDOW_CHARS)}`;
    expect(await countTokens(text, 'o200k_base')).toBeGreaterThanOrEqual(o200kTokens(text));
    expect(await countTokens(text, 'o200k_base', 10)).toBe(10);
    expect(await countTokens('', 'cl100k_base')).toBe(0);
  });
});

describe('the end of a stream cut at its hold (holds that grow)', () => {
  it('Anthropic: closes the open block, then message_delta with stop_reason max_tokens and message_stop', () => {
    const meter = anthropicProvider.streamMeter({ clientWantsUsage: false, upstreamModel: 'claude-sonnet-4-5', choices: 1 });
    meter.observe(anthropicEvent('message_start', { message: { usage: { input_tokens: 10, output_tokens: 1 } } }));
    meter.observe(anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
    meter.observe(anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'héllo' } }));
    meter.observe(anthropicEvent('content_block_stop', { index: 0 }));
    meter.observe(anthropicEvent('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 't', name: 'Read', input: {} } }));
    expect(meter.outputSoFar).toBe(6 + 4); // the bytes of 'héllo' and of the tool's name
    expect(meter.cutEvents()).toEqual([
      anthropicEvent('content_block_stop', { index: 1 }),
      anthropicEvent('message_delta', { delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 10 } }),
      anthropicEvent('message_stop', {}),
    ]);
  });

  it('OpenAI: a chunk with finish_reason "length" for each unfinished choice, with the stream\'s id, then [DONE]', () => {
    const meter = openaiMeter('gpt-4o', 2);
    meter.observe(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 7, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'ab' }, finish_reason: null }] })}`);
    meter.observe(openaiChunk({}, 'stop', 1));
    expect(meter.outputSoFar).toBe(2);
    expect(meter.cutEvents()).toEqual([
      `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 7, model: 'gpt-4o', choices: [{ index: 0, delta: {}, finish_reason: 'length' }] })}`,
      'data: [DONE]',
    ]);
  });
});
