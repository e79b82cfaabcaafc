import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { requestCost } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { inputTokenBound } from '../../src/proxy/estimate.js';
import { type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { proxyFixture } from '../support/proxy-fixture.js';
import { keyEvents } from '../support/usage-events.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Tell me something' }], max_tokens: 50, stream: true as const };
const message = { model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user' as const, content: 'Tell me something' }], stream: true as const };
const TOKENS_PER_DELTA = 3;

describe(`a client that closes its stream (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let openai: OpenAI;
  let anthropic: Anthropic;
  let keyId: string;

  // Several tokens per delta, as real providers send at times: one delta is not one token.
  const f = proxyFixture({ fake: { dripMs: 40, lateUsageMs: 400, tokensPerDelta: TOKENS_PER_DELTA }, nothingHeld: true });
  beforeAll(() => void ({ fake, app, keyId, openai, anthropic } = f));
  const events = keyEvents(() => app, () => keyId);
  beforeEach(() => events.mark());
  /** The one usage event of the request just made, once it is settled. */
  const settledEvent = () => events.settled();
  const upstreamOutcome = async (outcome: string) =>
    vi.waitFor(() => expect(fake.requests[0]?.outcome).toBe(outcome), { timeout: 5_000 });

  describe('after the upstream finished generating', () => {
    it('reads the OpenAI stream on for its usage and charges that, exactly', async () => {
      fake.setMode('late-usage');
      fake.setReplyTokens(10);
      const stream = await openai.chat.completions.create(chat);
      const content: string[] = [];
      for await (const c of stream) {
        content.push(c.choices[0]?.delta.content ?? '');
        if (c.choices[0]?.finish_reason) stream.controller.abort();
      }
      expect(content.join('')).toBe('tok '.repeat(10));
      await upstreamOutcome('completed');
      const exp = fake.expectedUsage(chat);
      const event = await settledEvent();
      expect(event).toMatchObject({ outcome: 'client_aborted', http_status: 499, input_tokens: exp.inputTokens, output_tokens: exp.outputTokens });
      expect(Boolean(event.estimated)).toBe(false);
      const mini = (await app.services.models.find('gpt-4o-mini'))!;
      expect(toMicro(event.cost_micro)).toBe(requestCost(mini, exp));
    });

    it('lets an Anthropic stream finish after message_delta and charges its reported usage', async () => {
      fake.setMode('late-usage');
      fake.setReplyTokens(10);
      const stream = await anthropic.messages.create(message);
      for await (const e of stream) if (e.type === 'message_delta') stream.controller.abort();
      await upstreamOutcome('completed');
      const exp = fake.expectedUsage(message);
      const event = await settledEvent();
      expect(event).toMatchObject({ outcome: 'client_aborted', http_status: 499, input_tokens: exp.inputTokens, output_tokens: exp.outputTokens });
      expect(Boolean(event.estimated)).toBe(false);
    });
  });

  describe('mid-generation', () => {
    it('aborts the OpenAI upstream at once and charges the whole input bound and at least the tokens sent', async () => {
      fake.setMode('drip');
      fake.setReplyTokens(40);
      const stream = await openai.chat.completions.create(chat);
      let chunks = 0;
      for await (const _ of stream) if (++chunks === 3) stream.controller.abort();
      await upstreamOutcome('client-closed');
      const sent = fake.requests[0]!.tokensSent;
      expect(sent).toBeLessThan(40);
      const event = await settledEvent();
      expect(event).toMatchObject({ outcome: 'client_aborted', http_status: 499, input_tokens: inputTokenBound(chat) });
      expect(Boolean(event.estimated)).toBe(true);
      // All the fake sent but the one delta that may still be on its way when the abort reaches it ("tokens in
      // flight", docs/metering.md): what the proxy received is covered.
      expect(event.output_tokens).toBeGreaterThanOrEqual(sent - TOKENS_PER_DELTA);
      expect(event.output_tokens).toBeLessThanOrEqual(chat.max_tokens);
    });

    it('aborts the Anthropic upstream at once and charges message_start’s input and at least the tokens sent', async () => {
      fake.setMode('drip');
      fake.setReplyTokens(40);
      const stream = await anthropic.messages.create(message);
      let n = 0;
      for await (const _ of stream) if (++n === 5) stream.controller.abort();
      await upstreamOutcome('client-closed');
      const sent = fake.requests[0]!.tokensSent;
      expect(sent).toBeLessThan(40);
      const event = await settledEvent();
      expect(event).toMatchObject({ outcome: 'client_aborted', http_status: 499, input_tokens: fake.expectedUsage(message).inputTokens });
      expect(Boolean(event.estimated)).toBe(true);
      // All the fake sent but the one delta that may still be on its way when the abort reaches it ("tokens in
      // flight", docs/metering.md): what the proxy received is covered.
      expect(event.output_tokens).toBeGreaterThanOrEqual(sent - TOKENS_PER_DELTA);
      expect(event.output_tokens).toBeLessThanOrEqual(message.max_tokens);
    });
  });
});
