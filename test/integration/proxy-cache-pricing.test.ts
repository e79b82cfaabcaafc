import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost } from '../../src/domain/models/pricing.js';
import { toMicro } from '../../src/domain/money.js';
import type { ModelBridgeClient } from '../../src/client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream, type TokenKinds } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { clientFor } from '../support/trpc.js';

/**
 * Prompt caching and reasoning, billed at the provider's prices: a Claude Code turn re-sends a long prompt that is
 * mostly read from the cache. The fake reports 103,000 prompt tokens (412,000 characters) as 100,000 read from the
 * cache, 1,000 written to it and 2,000 fresh, like Anthropic does.
 */
const PROMPT_CHARS = 412_000;
const claudeCodeTurn = (model: string) => ({
  model,
  max_tokens: 64,
  system: 'x'.repeat(PROMPT_CHARS - 20),
  messages: [{ role: 'user' as const, content: 'Fix the failing test' }],
});
const claudeCodeCache = { cacheReadTokens: 100_000, cacheWrite5mTokens: 1_000 };

describe(`prompt-cache and reasoning tokens, billed at the catalog's prices (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let anthropic: Anthropic;
  let openai: OpenAI;
  let keyId: string;
  let mb: ModelBridgeClient;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ env: { ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-ant-provider', OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-openai-provider' } });
    const owner = await makeUser(app.services, { prepaidMicro: 100_000_000 });
    const created = await makeKey(app.services, owner, { name: 'claude code' });
    keyId = created.key.id;
    anthropic = new Anthropic({ apiKey: created.secret, baseURL: app.url, maxRetries: 0 });
    openai = new OpenAI({ apiKey: created.secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    mb = await clientFor(app, owner);
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const lastEvent = async () => app.t.db('usage_events').where({ key_id: keyId }).orderBy('id', 'desc').first();
  const kindsOf = (e: Record<string, unknown>): TokenKinds => ({
    inputTokens: Number(e.input_tokens), cachedInputTokens: Number(e.cached_input_tokens), cacheWrite5mTokens: Number(e.cache_write_5m_tokens),
    cacheWrite1hTokens: Number(e.cache_write_1h_tokens), outputTokens: Number(e.output_tokens), reasoningTokens: Number(e.reasoning_tokens),
  });
  const priced = async (id: string) => (await app.services.models.find(id))!;

  // claude-haiku-4-5 as seeded: input 1.55, cache read 0.155, 5-minute write 1.9375, 1-hour write 3.1, output 7.75 AUD/Mtok.
  // Input ⌈2,000 × 1.55 + 1,000 × 1.9375 + 100,000 × 0.155⌉ = ⌈20,537.5⌉, output 8 × 7.75 = 62 (micro-AUD).
  const CLAUDE_CODE_TURN_MICRO = 20_538 + 62;
  const claudeCodeKinds = { inputTokens: 2_000, cachedInputTokens: 100_000, cacheWrite5mTokens: 1_000, cacheWrite1hTokens: 0, outputTokens: 8, reasoningTokens: 0 };

  it('charges a Claude Code turn what Anthropic charges: cache reads at 0.1×, 5-minute writes at 1.25× the input price', async () => {
    fake.setUsageDetails(claudeCodeCache);
    const body = claudeCodeTurn('claude-haiku-4-5');
    const res = await anthropic.messages.create(body);
    expect(res.usage).toMatchObject({ input_tokens: 2_000, cache_read_input_tokens: 100_000, cache_creation_input_tokens: 1_000 });
    const event = await lastEvent();
    expect(event).toMatchObject({ model: 'claude-haiku-4-5', outcome: 'ok' });
    expect(kindsOf(event)).toEqual(claudeCodeKinds);
    expect(fake.expectedTokens(body, 'anthropic')).toEqual(claudeCodeKinds);
    expect(toMicro(event.cost_micro)).toBe(CLAUDE_CODE_TURN_MICRO);
    expect(requestCost(await priced('claude-haiku-4-5'), claudeCodeKinds)).toBe(CLAUDE_CODE_TURN_MICRO);
    // Before cache prices every prompt token was billed at the input price: 103,000 × 1.55 + 62, 7.75 times as much.
    expect(CLAUDE_CODE_TURN_MICRO * 7.75).toBeLessThanOrEqual(159_650 + 62);
  });

  it('charges the same turn streamed exactly the same, from message_start’s and message_delta’s usage', async () => {
    fake.setUsageDetails(claudeCodeCache);
    const stream = anthropic.messages.stream(claudeCodeTurn('claude-haiku-4-5'));
    const final = await stream.finalMessage();
    expect(final.usage).toMatchObject({ cache_read_input_tokens: 100_000, output_tokens: 8 });
    const event = await lastEvent();
    expect(Boolean(event.streamed)).toBe(true);
    expect(Boolean(event.estimated)).toBe(false);
    expect(kindsOf(event)).toEqual(claudeCodeKinds);
    expect(toMicro(event.cost_micro)).toBe(CLAUDE_CODE_TURN_MICRO);
  });

  it('bills 1-hour cache writes at 2× the input price, streamed (the TTL split comes only in message_start) and not', async () => {
    fake.setUsageDetails({ cacheReadTokens: 100_000, cacheWrite5mTokens: 1_000, cacheWrite1hTokens: 500 });
    const kinds = { inputTokens: 1_500, cachedInputTokens: 100_000, cacheWrite5mTokens: 1_000, cacheWrite1hTokens: 500, outputTokens: 8, reasoningTokens: 0 };
    // ⌈1,500 × 1.55 + 1,000 × 1.9375 + 500 × 3.1 + 100,000 × 0.155⌉ = ⌈21,312.5⌉, + 62
    const cost = 21_313 + 62;
    await anthropic.messages.create(claudeCodeTurn('claude-haiku-4-5'));
    expect(kindsOf(await lastEvent())).toEqual(kinds);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(cost);
    await anthropic.messages.stream(claudeCodeTurn('claude-haiku-4-5')).finalMessage();
    expect(kindsOf(await lastEvent())).toEqual(kinds);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(cost);
  });

  it('bills cache writes reported without the TTL split as 5-minute writes', async () => {
    fake.setUsageDetails({ cacheReadTokens: 100_000, cacheWrite5mTokens: 1_000, cacheWrite1hTokens: 500, unsplitCacheWrites: true });
    await anthropic.messages.create(claudeCodeTurn('claude-haiku-4-5'));
    expect(kindsOf(await lastEvent())).toEqual({ inputTokens: 1_500, cachedInputTokens: 100_000, cacheWrite5mTokens: 1_500, cacheWrite1hTokens: 0, outputTokens: 8, reasoningTokens: 0 });
    // ⌈1,500 × 1.55 + 1,500 × 1.9375 + 100,000 × 0.155⌉ = ⌈20,731.25⌉, + 62
    expect(toMicro((await lastEvent()).cost_micro)).toBe(20_732 + 62);
  });

  it('bills OpenAI cached input (a part of prompt_tokens) at the model’s cached price, streamed and not', async () => {
    fake.setUsageDetails({ cacheReadTokens: 100_000 });
    const body = { model: 'gpt-4.1', messages: [{ role: 'user' as const, content: 'x'.repeat(PROMPT_CHARS) }], max_tokens: 64 };
    const kinds = { inputTokens: 3_000, cachedInputTokens: 100_000, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens: 8, reasoningTokens: 0 };
    // gpt-4.1 as seeded: input 3.1, cached input 0.775, output 12.4 AUD/Mtok: ⌈3,000 × 3.1 + 100,000 × 0.775⌉ + ⌈8 × 12.4⌉
    const cost = 86_800 + 100;
    const res = await openai.chat.completions.create(body);
    expect(res.usage).toMatchObject({ prompt_tokens: 103_000, prompt_tokens_details: { cached_tokens: 100_000 } });
    expect(kindsOf(await lastEvent())).toEqual(kinds);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(cost);

    const stream = await openai.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let cached: number | undefined;
    for await (const chunk of stream) if (chunk.usage) cached = chunk.usage.prompt_tokens_details?.cached_tokens;
    expect(cached).toBe(100_000);
    expect(Boolean((await lastEvent()).streamed)).toBe(true);
    expect(kindsOf(await lastEvent())).toEqual(kinds);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(cost);
  });

  it('records reasoning tokens as a part of the output, billed at the output price, streamed and not', async () => {
    fake.setUsageDetails({ cacheReadTokens: 1_024, reasoningTokens: 32 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'y'.repeat(8_000) }], max_completion_tokens: 100 };
    const kinds = { inputTokens: 976, cachedInputTokens: 1_024, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens: 40, reasoningTokens: 32 };
    // gpt-4o-mini as seeded: input 0.2325, cached 0.11625, output 0.93: ⌈976 × 0.2325 + 1,024 × 0.11625⌉ + ⌈40 × 0.93⌉
    const cost = 346 + 38;
    const res = await openai.chat.completions.create(body);
    expect(res.choices[0]!.message.content).toBe('tok '.repeat(8));
    expect(res.usage?.completion_tokens_details?.reasoning_tokens).toBe(32);
    expect(kindsOf(await lastEvent())).toEqual(kinds);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(cost);

    // A client that did not ask for stream usage still gets its reasoning recorded (the proxy asks for it).
    const stream = await openai.chat.completions.create({ ...body, stream: true });
    for await (const chunk of stream) expect(chunk.choices).not.toHaveLength(0);
    expect(kindsOf(await lastEvent())).toEqual(kinds);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(cost);
  });

  it('applies a cache price changed elsewhere (another instance) to the very next request', async () => {
    const admin = await makeUser(app.services, { admin: true });
    const mini = await priced('gpt-4o-mini');
    await app.services.models.upsert({ ...mini, id: 'gpt-cache-repriced' }, admin.actor);
    fake.setUsageDetails({ cacheReadTokens: 1_024 });
    const body = { model: 'gpt-cache-repriced', messages: [{ role: 'user' as const, content: 'z'.repeat(8_000) }], max_tokens: 16 };
    const kinds = { inputTokens: 976, cachedInputTokens: 1_024, cacheWrite5mTokens: 0, cacheWrite1hTokens: 0, outputTokens: 8, reasoningTokens: 0 };
    await openai.chat.completions.create(body);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(requestCost(mini, kinds));
    // Straight in the database, as another instance's admin page would: this instance remembers the old entry.
    await app.t.db('models').where({ id: 'gpt-cache-repriced' }).update({ cached_input_micro_per_mtok: 100_000_000 });
    await openai.chat.completions.create(body);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(requestCost({ ...mini, cachedInputMicroPerMTok: 100_000_000 }, kinds));
    // Cleared: cache reads cost the input price again.
    await app.t.db('models').where({ id: 'gpt-cache-repriced' }).update({ cached_input_micro_per_mtok: null });
    await openai.chat.completions.create(body);
    expect(toMicro((await lastEvent()).cost_micro)).toBe(requestCost({ inputMicroPerMTok: mini.inputMicroPerMTok, outputMicroPerMTok: mini.outputMicroPerMTok }, { inputTokens: 2_000, outputTokens: 8 }));
  });

  it('shows the kinds in tRPC usage.list and keys.usage', async () => {
    fake.setUsageDetails(claudeCodeCache);
    await anthropic.messages.create(claudeCodeTurn('claude-haiku-4-5'));
    const [event] = (await mb.usage.list.query({ keyId, limit: 1 })).items;
    expect(event).toMatchObject({ ...claudeCodeKinds, costAud: '0.0206' });
    const usage = await mb.keys.usage.query({ id: keyId });
    const haiku = usage.byModel.find((m) => m.model === 'claude-haiku-4-5')!;
    expect(haiku.cachedInputTokens).toBeGreaterThanOrEqual(100_000);
    expect(haiku.cacheWrite5mTokens).toBeGreaterThanOrEqual(1_000);
    expect(usage.totals.reasoningTokens).toBeGreaterThanOrEqual(32);
  });
});
