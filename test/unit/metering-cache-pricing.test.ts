import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { highestInputPrice, requestCost, tokenUsage, type Prices, type TokenUsage } from '../../src/domain/models/pricing.js';
import { tokenCost } from '../../src/domain/money.js';
import { anthropicProvider } from '../../src/proxy/upstreams/anthropic/index.js';
import { openaiProvider } from '../../src/proxy/upstreams/openai/index.js';

const price = fc.integer({ min: 0, max: 200_000_000 });
const tokens = fc.integer({ min: 0, max: 5_000_000 });
const usage = fc.record({
  inputTokens: tokens, cachedInputTokens: tokens, cacheWrite5mTokens: tokens, cacheWrite1hTokens: tokens, outputTokens: tokens,
  reasoningTokens: fc.constant(0),
});
/** A model whose cache prices are each absent (the input price) or at most the input price. */
const discounted = price.chain((input) => {
  const cache = fc.option(fc.integer({ min: 0, max: input }), { nil: null });
  return fc.record({ inputMicroPerMTok: fc.constant(input), outputMicroPerMTok: price, cachedInputMicroPerMTok: cache, cacheWriteMicroPerMTok: cache, cacheWrite1hMicroPerMTok: cache });
});
/** Any prices, cache writes above the input price included (Anthropic's are 1.25× and 2×). */
const anyPrices = fc.record({
  inputMicroPerMTok: price, outputMicroPerMTok: price, cachedInputMicroPerMTok: fc.option(price, { nil: null }),
  cacheWriteMicroPerMTok: fc.option(price, { nil: null }), cacheWrite1hMicroPerMTok: fc.option(price, { nil: null }),
});
const allInput = (u: TokenUsage) => u.inputTokens + u.cachedInputTokens + u.cacheWrite5mTokens + u.cacheWrite1hTokens;
const KINDS = ['inputTokens', 'cachedInputTokens', 'cacheWrite5mTokens', 'cacheWrite1hTokens', 'outputTokens'] as const;

/** The exact cost in micro-AUD × 10^6 (an integer), each kind at its price. */
function exactTimesMillion(m: Prices, u: TokenUsage): bigint {
  const input = m.inputMicroPerMTok;
  const parts: Array<[number, number]> = [
    [u.inputTokens, input], [u.cachedInputTokens, m.cachedInputMicroPerMTok ?? input], [u.cacheWrite5mTokens, m.cacheWriteMicroPerMTok ?? input],
    [u.cacheWrite1hTokens, m.cacheWrite1hMicroPerMTok ?? input], [u.outputTokens, m.outputMicroPerMTok],
  ];
  return parts.reduce((sum, [t, p]) => sum + BigInt(t) * BigInt(p), 0n);
}

describe('request cost with prompt-cache prices', () => {
  it('never exceeds the cost of the same tokens all billed as fresh input when cache prices are at most the input price', () => {
    fc.assert(fc.property(discounted, usage, (model, u) => {
      const fresh = requestCost({ inputMicroPerMTok: model.inputMicroPerMTok, outputMicroPerMTok: model.outputMicroPerMTok }, { inputTokens: allInput(u), outputTokens: u.outputTokens });
      expect(requestCost(model, u)).toBeLessThanOrEqual(fresh);
    }), { numRuns: 2_000 });
  });

  it('grows with every count, whatever the prices', () => {
    fc.assert(fc.property(anyPrices, usage, fc.constantFrom(...KINDS), fc.integer({ min: 1, max: 1_000_000 }), (model, u, kind, more) => {
      expect(requestCost(model, { ...u, [kind]: u[kind] + more })).toBeGreaterThanOrEqual(requestCost(model, u));
    }), { numRuns: 2_000 });
  });

  it('is the simple formula when there are no cache tokens', () => {
    fc.assert(fc.property(anyPrices, tokens, tokens, (model, input, output) => {
      expect(requestCost(model, tokenUsage({ inputTokens: input, outputTokens: output, reasoningTokens: output })))
        .toBe(tokenCost(input, model.inputMicroPerMTok) + tokenCost(output, model.outputMicroPerMTok));
    }), { numRuns: 2_000 });
  });

  it('is never below the exact cost, and at most 2 micro-AUD above it (one rounding per direction)', () => {
    fc.assert(fc.property(anyPrices, usage, (model, u) => {
      const billedTimesMillion = BigInt(requestCost(model, u)) * 1_000_000n;
      const exact = exactTimesMillion(model, u);
      expect(billedTimesMillion >= exact).toBe(true);
      expect(billedTimesMillion < exact + 2_000_000n).toBe(true);
    }), { numRuns: 2_000 });
  });

  it('is bounded by the estimate’s rule: every input token at the highest input-side price', () => {
    fc.assert(fc.property(anyPrices, usage, (model, u) => {
      const bound = requestCost({ inputMicroPerMTok: highestInputPrice(model), outputMicroPerMTok: model.outputMicroPerMTok }, { inputTokens: allInput(u), outputTokens: u.outputTokens });
      expect(requestCost(model, u)).toBeLessThanOrEqual(bound);
    }), { numRuns: 2_000 });
  });

  it('prices a Claude Code turn (2k fresh, 1k written for 5 minutes, 100k read) at Anthropic’s rates', () => {
    // claude-sonnet-4-5 as seeded: input 4.65, 5m write 5.8125, read 0.465, output 23.25 AUD per Mtok.
    const sonnet = { inputMicroPerMTok: 4_650_000, outputMicroPerMTok: 23_250_000, cachedInputMicroPerMTok: 465_000, cacheWriteMicroPerMTok: 5_812_500, cacheWrite1hMicroPerMTok: 9_300_000 };
    const turn = tokenUsage({ inputTokens: 2_000, cacheWrite5mTokens: 1_000, cachedInputTokens: 100_000, outputTokens: 500 });
    // ⌈9,300 + 5,812.5 + 46,500⌉ + 11,625
    expect(requestCost(sonnet, turn)).toBe(61_613 + 11_625);
    // Every input token at the input price, as before: 478,950 + 11,625, 6.7 times as much.
    expect(requestCost({ inputMicroPerMTok: 4_650_000, outputMicroPerMTok: 23_250_000 }, { inputTokens: 103_000, outputTokens: 500 })).toBe(490_575);
  });
});

describe('reading cached and reasoning tokens', () => {
  it('OpenAI: cached_tokens is a part of prompt_tokens, reasoning_tokens a part of completion_tokens', () => {
    const chat = JSON.stringify({ usage: { prompt_tokens: 1_000, completion_tokens: 300, prompt_tokens_details: { cached_tokens: 768 }, completion_tokens_details: { reasoning_tokens: 256 } } });
    expect(openaiProvider.usageFromJson(chat)).toEqual(tokenUsage({ inputTokens: 232, cachedInputTokens: 768, outputTokens: 300, reasoningTokens: 256 }));
    // The Responses API spells them input_tokens / output_tokens.
    const responses = JSON.stringify({ usage: { input_tokens: 50, input_tokens_details: { cached_tokens: 10 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 4 } } });
    expect(openaiProvider.usageFromJson(responses)).toEqual(tokenUsage({ inputTokens: 40, cachedInputTokens: 10, outputTokens: 9, reasoningTokens: 4 }));
    // A detail larger than its total cannot move tokens to a cheaper kind than the total has.
    expect(openaiProvider.usageFromJson('{"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}}'))
      .toEqual(tokenUsage({ inputTokens: 0, cachedInputTokens: 5, outputTokens: 1 }));
  });

  it('OpenAI streams: the usage chunk carries the same details', () => {
    const meter = openaiProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'gpt-5', choices: 1 });
    meter.observe('data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}');
    meter.observe('data: {"choices":[],"usage":{"prompt_tokens":2100,"completion_tokens":40,"prompt_tokens_details":{"cached_tokens":2048},"completion_tokens_details":{"reasoning_tokens":32}}}');
    expect(meter.usage).toEqual(tokenUsage({ inputTokens: 52, cachedInputTokens: 2048, outputTokens: 40, reasoningTokens: 32 }));
  });

  it('Anthropic: input_tokens excludes the cache; writes split by TTL, or all 5-minute without the split', () => {
    const split = '{"usage":{"input_tokens":2000,"cache_read_input_tokens":100000,"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500},"output_tokens":7}}';
    expect(anthropicProvider.usageFromJson(split)).toEqual(tokenUsage({ inputTokens: 2000, cachedInputTokens: 100_000, cacheWrite5mTokens: 1000, cacheWrite1hTokens: 500, outputTokens: 7 }));
    expect(anthropicProvider.usageFromJson('{"usage":{"input_tokens":3,"cache_creation_input_tokens":40,"output_tokens":1}}'))
      .toEqual(tokenUsage({ inputTokens: 3, cacheWrite5mTokens: 40, outputTokens: 1 }));
    // Writes are never fewer than the split says.
    expect(anthropicProvider.usageFromJson('{"usage":{"input_tokens":1,"cache_creation_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":20},"output_tokens":1}}'))
      .toEqual(tokenUsage({ inputTokens: 1, cacheWrite5mTokens: 10, cacheWrite1hTokens: 20, outputTokens: 1 }));
  });

  it('Anthropic streams: message_start’s TTL split survives a message_delta that repeats the counts without it', () => {
    const meter = anthropicProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'claude-sonnet-4-5', choices: 1 });
    meter.observe('event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":2000,"cache_read_input_tokens":100000,"cache_creation_input_tokens":1500,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":500},"output_tokens":1}}}');
    expect(meter.reportedInput).toEqual({ inputTokens: 2000, cachedInputTokens: 100_000, cacheWrite5mTokens: 1000, cacheWrite1hTokens: 500 });
    meter.observe('event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":2000,"cache_read_input_tokens":100000,"cache_creation_input_tokens":1500,"output_tokens":12}}');
    expect(meter.usage).toEqual(tokenUsage({ inputTokens: 2000, cachedInputTokens: 100_000, cacheWrite5mTokens: 1000, cacheWrite1hTokens: 500, outputTokens: 12 }));
    // A message_delta with only the output count keeps everything message_start said.
    const older = anthropicProvider.streamMeter({ clientWantsUsage: true, upstreamModel: 'claude-sonnet-4-5', choices: 1 });
    older.observe('event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,"cache_read_input_tokens":9,"output_tokens":1}}}');
    older.observe('event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}');
    expect(older.usage).toEqual(tokenUsage({ inputTokens: 5, cachedInputTokens: 9, outputTokens: 3 }));
  });
});
