import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { describe, expect, it } from 'vitest';
import type { Responder } from '../support/fake-upstream.js';
import { clientTier } from './support/tier.js';

const tier = clientTier();
const anthropic = () => createAnthropic({ apiKey: tier.secret, baseURL: `${tier.anthropicBaseUrl}/v1` });
const openai = () => createOpenAI({ apiKey: tier.secret, baseURL: tier.openaiBaseUrl });
const system = 'You are terse. '.repeat(200);

const weather = tool({
  description: 'Current weather of a city',
  inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
  execute: async ({ city }) => `12°C in ${city}`,
});

/** Calls get_weather once, then answers with what the tool said (Anthropic tool_result or OpenAI tool message). */
const weatherRound: Responder = (body, api) => {
  const result = api === 'openai'
    ? body.messages.find((m: { role: string }) => m.role === 'tool')?.content
    : body.messages.flatMap((m: { content: unknown }) => (Array.isArray(m.content) ? m.content : [])).find((b: { type: string }) => b.type === 'tool_result')?.content;
  const text = typeof result === 'string' ? result : Array.isArray(result) ? result.map((p: { text?: string }) => p.text ?? '').join('') : undefined;
  return text !== undefined ? { blocks: [{ type: 'text', text: `It is ${text.replace(/^"|"$/g, '')}.` }] }
    : { blocks: [{ type: 'tool_use', name: 'get_weather', input: { city: 'Hobart' } }] };
};

describe('AI SDK (@ai-sdk/anthropic) through ModelBridge', () => {
  it('generateText: bills cache reads and writes at the catalog prices', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 400, cacheWrite5mTokens: 100, cacheWrite1hTokens: 50 });
    const result = await generateText({ model: anthropic()('claude-sonnet-5-5'), system, prompt: 'Hi', maxOutputTokens: 64, maxRetries: 0 });
    expect(result.text).toBe('tok '.repeat(8));
    expect(result.usage.inputTokenDetails.cacheReadTokens).toBe(400);
    expect(result.usage.inputTokenDetails.cacheWriteTokens).toBe(150);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('streamText with reasoning: the thinking and the text arrive, the stream is billed', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 600 });
    tier.fake.setResponder(() => ({ blocks: [{ type: 'thinking', thinking: 'A greeting; answer briefly.' }, { type: 'text', text: 'Hello!' }] }));
    const result = streamText({
      model: anthropic()('claude-opus-5-5'), system, prompt: 'Hi', maxOutputTokens: 4096, maxRetries: 0,
      providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } },
    });
    expect(await result.text).toBe('Hello!');
    expect(await result.reasoningText).toBe('A greeting; answer briefly.');
    expect((await result.usage).inputTokenDetails.cacheReadTokens).toBe(600);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('runs a tool loop (two steps) and bills both requests', async () => {
    tier.fake.setResponder(weatherRound);
    const result = streamText({ model: anthropic()('claude-haiku-5-5'), prompt: 'Weather in Hobart?', tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0 });
    expect(await result.text).toBe('It is 12°C in Hobart.');
    expect((await result.steps).length).toBe(2);
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });
});

describe('AI SDK base URLs', () => {
  it('answers a base URL without /v1 with a JSON 404 that names the base URL to use, and charges nothing', async () => {
    const rootless = createAnthropic({ apiKey: tier.secret, baseURL: tier.anthropicBaseUrl });
    const err = await generateText({ model: rootless('claude-sonnet-5-5'), prompt: 'Hi', maxRetries: 0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 404 });
    expect((err as { responseBody: string }).responseBody).toContain('/v1');
    expect(() => JSON.parse((err as { responseBody: string }).responseBody)).not.toThrow();
    expect(tier.fake.requests).toEqual([]);
    expect(await tier.expectBill()).toEqual({ charged: 0, refused: 0, totalMicro: 0 });
  });
});

describe('AI SDK (@ai-sdk/openai .chat()) through ModelBridge', () => {
  it('generateText: bills cached and reasoning tokens at the catalog prices', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 400, reasoningTokens: 24 });
    const result = await generateText({ model: openai().chat('gpt-6.2-sol'), system, prompt: 'Hi', maxOutputTokens: 200, maxRetries: 0 });
    expect(result.text).toBe('tok '.repeat(8));
    expect(result.usage.inputTokenDetails.cacheReadTokens).toBe(400);
    expect(result.usage.outputTokenDetails.reasoningTokens).toBe(24);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('streamText: the usage ModelBridge is billed by reaches the SDK too', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 300, reasoningTokens: 8 });
    const result = streamText({ model: openai().chat('gpt-6-astra'), system, prompt: 'Hi', maxOutputTokens: 200, maxRetries: 0 });
    expect(await result.text).toBe('tok '.repeat(8));
    expect((await result.usage).inputTokenDetails.cacheReadTokens).toBe(300);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('runs a tool loop (two steps), streamed, and bills both requests', async () => {
    tier.fake.setResponder(weatherRound);
    const result = streamText({ model: openai().chat('gpt-5.6-luna'), prompt: 'Weather in Hobart?', tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0 });
    expect(await result.text).toBe('It is 12°C in Hobart.');
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });
});

describe('AI SDK (@ai-sdk/openai) default: the Responses API', () => {
  it('generateText and streamText with openai(model) go to /v1/responses and are billed, cached and reasoning tokens included', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 300, reasoningTokens: 20 });
    const model = openai()('gpt-5.5');
    const generated = await generateText({ model, system, prompt: 'Hi', maxOutputTokens: 64, maxRetries: 0 });
    expect(generated.text.length).toBeGreaterThan(0);
    const streamed = streamText({ model, system, prompt: 'Hi again', maxOutputTokens: 64, maxRetries: 0 });
    expect((await streamed.text).length).toBeGreaterThan(0);
    expect(tier.fake.requests.map((r) => r.path)).toEqual(['/v1/responses', '/v1/responses']);
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });
});

describe('AI SDK (@ai-sdk/openai .chat()) with a Claude model: translated to Messages', () => {
  it('streamText with a tool loop on claude-haiku-5-5 through /v1/chat/completions, billed at the Anthropic usage', async () => {
    tier.fake.setResponder(weatherRound);
    const result = streamText({ model: openai().chat('claude-haiku-5-5'), prompt: 'Weather in Hobart?', tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0 });
    expect(await result.text).toBe('It is 12°C in Hobart.');
    expect(tier.fake.requests.map((r) => r.path)).toEqual(['/v1/messages', '/v1/messages']);
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });
});

