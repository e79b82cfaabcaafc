import Anthropic from '@anthropic-ai/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientTier } from './support/tier.js';
import { VERSION } from '@anthropic-ai/sdk/version';
import { expectTierVersion } from './support/packages.js';

const tier = clientTier();
let client: Anthropic;
beforeAll(() => {
  client = new Anthropic({ apiKey: tier.secret, baseURL: tier.anthropicBaseUrl, maxRetries: 0 });
});

const cached = [{ type: 'text' as const, text: 'You are terse. '.repeat(200), cache_control: { type: 'ephemeral' as const, ttl: '1h' as const } }];
const weather = {
  name: 'get_weather', description: 'Current weather of a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('@anthropic-ai/sdk through ModelBridge', () => {
  it('is the tier\'s own package', () => expectTierVersion('@anthropic-ai/sdk', VERSION));

  it('bills a message with cache reads and 5-minute and 1-hour cache writes at the catalog prices', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 500, cacheWrite5mTokens: 120, cacheWrite1hTokens: 80 });
    const message = await client.messages.create({ model: 'claude-sonnet-5-5', max_tokens: 64, system: cached, messages: [{ role: 'user', content: 'Hi' }] });
    expect(message.usage.cache_read_input_tokens).toBe(500);
    expect(message.usage.cache_creation?.ephemeral_1h_input_tokens).toBe(80);
    expect(await tier.expectBill()).toMatchObject({ charged: 1, refused: 0 });
  });

  it('bills a stream with thinking and cache tokens, read from message_start and message_delta', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 700, cacheWrite5mTokens: 50 });
    tier.fake.setResponder(() => ({ blocks: [{ type: 'thinking', thinking: 'The user greets me; greet back.' }, { type: 'text', text: 'Hello there!' }] }));
    const stream = client.messages.stream({ model: 'claude-opus-5-5', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, system: cached, messages: [{ role: 'user', content: 'Hi' }] });
    const message = await stream.finalMessage();
    expect(message.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    expect(message.content[1]).toMatchObject({ type: 'text', text: 'Hello there!' });
    expect(message.usage.cache_read_input_tokens).toBe(700);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('runs a tool round trip, streamed, and bills both requests', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 300 });
    tier.fake.setResponder((body) => {
      const last = body.messages.at(-1);
      const result = Array.isArray(last.content) ? last.content.find((b: { type: string }) => b.type === 'tool_result') : undefined;
      return result
        ? { blocks: [{ type: 'text', text: `It is ${result.content} in Hobart.` }] }
        : { blocks: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', name: 'get_weather', input: { city: 'Hobart' } }] };
    });
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Hobart?' }];
    const first = await client.messages.stream({ model: 'claude-haiku-5-5', max_tokens: 256, tools: [weather], messages }).finalMessage();
    expect(first.stop_reason).toBe('tool_use');
    const call = first.content.find((b) => b.type === 'tool_use');
    expect(call).toMatchObject({ name: 'get_weather', input: { city: 'Hobart' } });
    messages.push({ role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: call!.id, content: '12°C' }] });
    const second = await client.messages.create({ model: 'claude-haiku-5-5', max_tokens: 256, tools: [weather], messages });
    expect(second.content[0]).toMatchObject({ type: 'text', text: 'It is 12°C in Hobart.' });
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });

  it('passes an upstream 529 through as overloaded_error and charges nothing for it', async () => {
    tier.fake.setModeForNext('status:529');
    tier.fake.setRetryAfter('3');
    const err = await client.messages.create({ model: 'claude-sonnet-5-5', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect((err as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
    expect((err as InstanceType<typeof Anthropic.APIError>).headers?.get('retry-after')).toBe('3');
    expect(await tier.expectBill()).toEqual({ charged: 0, refused: 1, totalMicro: 0 });
  });

  it('retries an upstream 429 with the SDK\'s own retries and charges only the request served', async () => {
    tier.fake.setModeForNext('status:429');
    tier.fake.setRetryAfter('0');
    const retrying = new Anthropic({ apiKey: tier.secret, baseURL: tier.anthropicBaseUrl, maxRetries: 2 });
    const message = await retrying.messages.create({ model: 'claude-sonnet-5-5', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] });
    expect(message.type).toBe('message');
    expect(tier.fake.requests.map((r) => r.mode)).toEqual(['status:429', 'ok']);
    expect(await tier.expectBill()).toMatchObject({ charged: 1, refused: 1 });
  });

  it('counts tokens (as Claude Code does) without charging anything', async () => {
    const counted = await client.messages.countTokens({ model: 'claude-sonnet-5-5', system: cached, messages: [{ role: 'user', content: 'Hi' }] });
    expect(counted.input_tokens).toBe(tier.fake.expectedUsage({ system: cached, messages: [{ role: 'user', content: 'Hi' }] }).inputTokens);
    expect(tier.fake.requests.map((r) => r.path)).toEqual(['/v1/messages/count_tokens']);
    expect(await tier.expectBill()).toEqual({ charged: 0, refused: 0, totalMicro: 0 });
  });
});
