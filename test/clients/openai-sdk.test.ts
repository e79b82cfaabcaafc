import OpenAI from 'openai';
import { VERSION } from 'openai/version';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectTierVersion } from './support/packages.js';
import { clientTier } from './support/tier.js';

const tier = clientTier();
let client: OpenAI;
beforeAll(() => {
  client = new OpenAI({ apiKey: tier.secret, baseURL: tier.openaiBaseUrl, maxRetries: 0 });
});

const prompt = [{ role: 'system' as const, content: 'You are terse. '.repeat(300) }, { role: 'user' as const, content: 'Hi' }];
const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Current weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('openai through ModelBridge', () => {
  it('is the tier\'s own package', () => expectTierVersion('openai', VERSION));

  it('bills a chat completion with cached and reasoning tokens at the catalog prices', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 1024, reasoningTokens: 40 });
    const completion = await client.chat.completions.create({ model: 'gpt-6.2-sol', max_completion_tokens: 200, messages: prompt });
    expect(completion.usage?.prompt_tokens_details?.cached_tokens).toBe(1024);
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBe(40);
    expect(await tier.expectBill()).toMatchObject({ charged: 1, refused: 0 });
  });

  it('bills a stream by its usage chunk, which it shows only when asked for', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 512, reasoningTokens: 16 });
    const chunks = [];
    for await (const chunk of await client.chat.completions.create({ model: 'gpt-6-astra', max_completion_tokens: 200, messages: prompt, stream: true })) chunks.push(chunk);
    expect(chunks.filter((c) => 'usage' in c), 'no usage field, not even "usage": null').toEqual([]);
    const withUsage = [];
    for await (const chunk of await client.chat.completions.create({ model: 'gpt-6-astra', max_completion_tokens: 200, messages: prompt, stream: true, stream_options: { include_usage: true } })) withUsage.push(chunk);
    expect(withUsage.at(-1)?.usage?.prompt_tokens_details?.cached_tokens).toBe(512);
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });

  it('runs a streamed tool call round trip and bills both requests', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 256 });
    tier.fake.setResponder((body) => {
      const result = body.messages.find((m: { role: string }) => m.role === 'tool');
      return result ? { blocks: [{ type: 'text', text: `It is ${result.content} in Hobart.` }] }
        : { blocks: [{ type: 'tool_use', name: 'get_weather', input: { city: 'Hobart' } }] };
    });
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Hobart?' }];
    const runner = client.chat.completions.stream({ model: 'gpt-5.6-luna', messages, tools: [weather] });
    const first = await runner.finalChatCompletion();
    const call = first.choices[0]!.message.tool_calls?.[0];
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Hobart"}' } });
    messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call!.id, content: '12°C' });
    const second = await client.chat.completions.create({ model: 'gpt-5.6-luna', messages, tools: [weather] });
    expect(second.choices[0]!.message.content).toBe('It is 12°C in Hobart.');
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });

  it('retries an upstream 429 and charges only the request served', async () => {
    tier.fake.setModeForNext('status:429');
    tier.fake.setRetryAfter('0');
    const retrying = new OpenAI({ apiKey: tier.secret, baseURL: tier.openaiBaseUrl, maxRetries: 2 });
    const completion = await retrying.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
    expect(completion.object).toBe('chat.completion');
    expect(tier.fake.requests.map((r) => r.mode)).toEqual(['status:429', 'ok']);
    expect(await tier.expectBill()).toMatchObject({ charged: 1, refused: 1 });
  });
});
