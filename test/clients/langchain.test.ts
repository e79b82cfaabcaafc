import { ChatAnthropic } from '@langchain/anthropic';
import { AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { describe, expect, it } from 'vitest';
import type { Responder } from '../support/fake-upstream.js';
import { clientTier } from './support/tier.js';

const tier = clientTier();
const chatAnthropic = (model: string) => new ChatAnthropic({ model, apiKey: tier.secret, anthropicApiUrl: tier.anthropicBaseUrl, maxRetries: 0, maxTokens: 256 });
const chatOpenAI = (model: string) => new ChatOpenAI({ model, apiKey: tier.secret, configuration: { baseURL: tier.openaiBaseUrl }, maxRetries: 0, maxTokens: 256 });
const prompt = [new SystemMessage('You are terse. '.repeat(200)), new HumanMessage('Hi')];

const weather = {
  name: 'get_weather', description: 'Current weather of a city',
  schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const callsWeatherThenAnswers: Responder = (body, api) => {
  const answered = api === 'openai' ? body.messages.some((m: { role: string }) => m.role === 'tool')
    : body.messages.some((m: { content: unknown }) => Array.isArray(m.content) && m.content.some((b: { type: string }) => b.type === 'tool_result'));
  return answered ? { blocks: [{ type: 'text', text: 'It is 12°C in Hobart.' }] } : { blocks: [{ type: 'tool_use', name: 'get_weather', input: { city: 'Hobart' } }] };
};

async function concat(stream: AsyncIterable<AIMessageChunk>): Promise<AIMessageChunk> {
  let all: AIMessageChunk | undefined;
  for await (const chunk of stream) all = all ? all.concat(chunk) : chunk;
  return all!;
}

describe('LangChain ChatAnthropic through ModelBridge', () => {
  it('invoke: bills cache reads and writes at the catalog prices', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 400, cacheWrite5mTokens: 60, cacheWrite1hTokens: 40 });
    const reply = await chatAnthropic('claude-sonnet-5-5').invoke(prompt);
    expect(reply.content).toBe('tok '.repeat(8));
    expect(reply.usage_metadata?.input_token_details?.cache_read).toBe(400);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('stream: the chunks add up to the reply, the stream is billed', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 500, cacheWrite5mTokens: 20 });
    const reply = await concat(await chatAnthropic('claude-opus-5-5').stream(prompt));
    expect(reply.content).toBe('tok '.repeat(8));
    expect(reply.usage_metadata?.input_token_details?.cache_read).toBe(500);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('a tool call round trip with bindTools, billed request by request', async () => {
    tier.fake.setResponder(callsWeatherThenAnswers);
    const model = chatAnthropic('claude-haiku-5-5').bindTools([weather]);
    const messages = [new HumanMessage('Weather in Hobart?')];
    const first = await model.invoke(messages);
    expect(first.tool_calls).toMatchObject([{ name: 'get_weather', args: { city: 'Hobart' } }]);
    const second = await model.invoke([...messages, first, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: '12°C' })]);
    expect(second.content).toBe('It is 12°C in Hobart.');
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });
});

describe('LangChain ChatOpenAI through ModelBridge', () => {
  it('invoke: bills cached and reasoning tokens at the catalog prices', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 512, reasoningTokens: 32 });
    const reply = await chatOpenAI('gpt-6.2-sol').invoke(prompt);
    expect(reply.content).toBe('tok '.repeat(8));
    expect(reply.usage_metadata?.input_token_details?.cache_read).toBe(512);
    expect(reply.usage_metadata?.output_token_details?.reasoning).toBe(32);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('stream (usage asked for by default): the usage reaches LangChain, the stream is billed', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 256, reasoningTokens: 8 });
    const reply = await concat(await chatOpenAI('gpt-6-astra').stream(prompt));
    expect(reply.content).toBe('tok '.repeat(8));
    expect(reply.usage_metadata?.input_token_details?.cache_read).toBe(256);
    expect(await tier.expectBill()).toMatchObject({ charged: 1 });
  });

  it('a streamed tool call round trip with bindTools, billed request by request', async () => {
    tier.fake.setResponder(callsWeatherThenAnswers);
    // Not a gpt-5.6 model: LangChain sends those to the Responses API whatever useResponsesApi says.
    const model = chatOpenAI('gpt-4.1').bindTools([weather]);
    const messages = [new HumanMessage('Weather in Hobart?')];
    const first = await concat(await model.stream(messages));
    expect(first.tool_calls).toMatchObject([{ name: 'get_weather', args: { city: 'Hobart' } }]);
    const asked = new AIMessage({ content: first.content, tool_calls: first.tool_calls });
    const second = await model.invoke([...messages, asked, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: '12°C' })]);
    expect(second.content).toBe('It is 12°C in Hobart.');
    expect(await tier.expectBill()).toMatchObject({ charged: 2 });
  });
});

describe('LangChain ChatOpenAI with a Claude model (translated to Anthropic Messages)', () => {
  it('invoke, stream and a bindTools round trip on claude-haiku-5-5 through /v1/chat/completions, billed at the Anthropic usage', async () => {
    tier.fake.setUsageDetails({ cacheReadTokens: 300, cacheWrite5mTokens: 40 });
    const claude = chatOpenAI('claude-haiku-5-5');
    expect((await claude.invoke(prompt)).content).toBe('tok '.repeat(8));
    const streamed = await concat(await claude.stream(prompt));
    expect(streamed.content).toBe('tok '.repeat(8));
    expect(streamed.usage_metadata?.input_token_details?.cache_read).toBe(300);
    tier.fake.setResponder(callsWeatherThenAnswers);
    const model = claude.bindTools([weather]);
    const messages = [new HumanMessage('Weather in Hobart?')];
    const first = await concat(await model.stream(messages));
    expect(first.tool_calls).toMatchObject([{ name: 'get_weather', args: { city: 'Hobart' } }]);
    const asked = new AIMessage({ content: first.content, tool_calls: first.tool_calls });
    const second = await model.invoke([...messages, asked, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: '12°C' })]);
    expect(second.content).toBe('It is 12°C in Hobart.');
    expect(tier.fake.requests.every((r) => r.path === '/v1/messages')).toBe(true);
    expect(await tier.expectBill()).toMatchObject({ charged: 4 });
  });
});
