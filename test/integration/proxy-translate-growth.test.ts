import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { OUTPUT_INCREMENT_TOKENS } from '../../src/domain/billing/growth.js';
import { tokenCost, toMicro } from '../../src/domain/money.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { proxyFixture } from '../support/proxy-fixture.js';

/**
 * A translated stream whose hold cannot grow is cut like any other (docs/metering.md): the upstream's meter decides,
 * and the end events it writes are translated, so the client's SDK finishes cleanly in its own format.
 */
const f = proxyFixture({ fake: { tokensPerDelta: 50, dripMs: 5 }, prepaidMicro: 100_000_000 });

async function keyWith(limitMicro: number) {
  const owner = await makeUser(f.app.services, { prepaidMicro: 100_000_000 });
  const { key, secret } = await makeKey(f.app.services, owner, { spendLimitMicro: limitMicro });
  return { key, openai: new OpenAI({ apiKey: secret, baseURL: `${f.app.url}/v1`, maxRetries: 0 }), anthropic: new Anthropic({ apiKey: secret, baseURL: f.app.url, maxRetries: 0 }) };
}

async function expectCutWithinBound(keyId: string, limitMicro: number, modelId: string) {
  const events = await f.app.t.db('usage_events').where({ key_id: keyId });
  expect(events.map((e: Record<string, unknown>) => e.outcome)).toEqual(['cut_at_limit']);
  const model = (await f.app.services.models.lookup(modelId))!;
  const row = await f.app.t.db('api_keys').where({ id: keyId }).first();
  expect(toMicro(row.held_micro)).toBe(0);
  expect(toMicro(row.spend_micro)).toBeLessThanOrEqual(limitMicro + tokenCost(OUTPUT_INCREMENT_TOKENS, model.outputMicroPerMTok));
  await vi.waitFor(() => expect(f.fake.requests[0]!.outcome).toBe('client-closed'), { timeout: 5_000 });
}

describe(`translated streams cut at their hold (${dialect})`, () => {
  beforeEach(() => {
    f.fake.setMode('drip');
    f.fake.setReplyTokens(20_000);
  });

  it('ends a Claude stream on /v1/chat/completions with finish_reason "length" and [DONE]', async () => {
    const { key, openai } = await keyWith(60_000);
    const stream = openai.chat.completions.stream({ model: 'claude-haiku-4-5', max_tokens: 64_000, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Write a long story.' }] });
    const done = await stream.finalChatCompletion();
    expect(done.choices[0]!.finish_reason).toBe('length');
    expect(done.usage?.completion_tokens).toBeGreaterThan(0);
    await expectCutWithinBound(key.id, 60_000, 'claude-haiku-4-5');
  }, 30_000);

  it('ends an OpenAI stream on /v1/messages with stop_reason "max_tokens" and message_stop', async () => {
    f.fake.setReplyTokens(16_000);
    const { key, anthropic } = await keyWith(4_000);
    const message = await anthropic.messages.stream({ model: 'gpt-4o-mini', max_tokens: 16_384, messages: [{ role: 'user', content: 'Write a long story.' }] }).finalMessage();
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.content[0]).toMatchObject({ type: 'text' });
    await expectCutWithinBound(key.id, 4_000, 'gpt-4o-mini');
  }, 30_000);
});
