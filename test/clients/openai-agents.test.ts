import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from '@openai/agents';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clientTier } from './support/tier.js';

/**
 * The OpenAI Agents SDK with its defaults (the Responses API, its default model), pointed at ModelBridge: a run and a
 * streamed run with a function tool, each request billed at the upstream's usage.
 */
const tier = clientTier();
const weather = tool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `12°C in ${city}`,
});

beforeAll(() => {
  setTracingDisabled(true); // tracing would export to OpenAI's servers
  setDefaultOpenAIClient(new OpenAI({ apiKey: tier.secret, baseURL: tier.openaiBaseUrl, maxRetries: 0 }));
});

describe('OpenAI Agents SDK through ModelBridge (its default model and API)', () => {
  it.each([false, true])('runs an agent with a tool round trip (stream: %s) on /v1/responses, billed request by request', async (stream) => {
    tier.fake.setUsageDetails({ cacheReadTokens: 100, reasoningTokens: 10 });
    tier.fake.setResponsesToolCall({ name: 'get_weather', arguments: JSON.stringify({ city: 'Hobart' }) });
    const agent = new Agent({ name: 'Weather', instructions: 'Answer with the weather.', tools: [weather] });
    const result = stream ? await run(agent, 'Weather in Hobart?', { stream: true }) : await run(agent, 'Weather in Hobart?');
    if (stream) await (result as { completed: Promise<void> }).completed;
    expect(String(result.finalOutput).length).toBeGreaterThan(0);
    const posts = tier.fake.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.path)).toEqual(['/v1/responses', '/v1/responses']);
    // The second request carries the tool's output back.
    expect(JSON.stringify(posts[1]!.body.input)).toContain('12°C in Hobart');
    expect(posts[0]!.body.model).toMatch(/^gpt-/);
    expect(await tier.expectBill()).toMatchObject({ charged: 2, refused: 0 });
  });
});
