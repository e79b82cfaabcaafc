import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { requestCost } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { inputTokenBound } from '../../src/proxy/estimate.js';
import { countTokens } from '../../src/proxy/upstreams/openai/tokens.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { proxyFixture } from '../support/proxy-fixture.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Tell me something' }], max_tokens: 8 };
const message = { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user' as const, content: 'Tell me something' }] };

describe(`failure policies (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let openai: OpenAI;
  let anthropic: Anthropic;
  let keyId: string;

  const f = proxyFixture({ fake: { dripMs: 40 }, env: { UPSTREAM_TIMEOUT_MS: '1000' }, spendLimitMicro: 2_000_000, nothingHeld: true });
  beforeAll(() => void ({ fake, app, keyId, openai, anthropic } = f));

  let seen = 0;
  async function newEvents() {
    const rows = await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id');
    const fresh = rows.slice(seen);
    seen = rows.length;
    return fresh;
  }
  /** The next usage event: an upstream error event reaches the client as it streams, before the request settles. */
  async function settledEvent() {
    let event: Record<string, unknown> | undefined;
    await vi.waitFor(async () => {
      [event] = await newEvents();
      expect(event).toBeDefined();
    });
    return event!;
  }
  const spend = async () => toMicro((await app.t.db('api_keys').where({ id: keyId }).first()).spend_micro);

  describe('upstream errors before any output: nothing charged', () => {
    it('answers an upstream 5xx with 502 upstream_error in each format', async () => {
      await newEvents();
      const before = await spend();
      fake.setMode('error');
      const err = await openai.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect(err).toMatchObject({ status: 502, code: 'upstream_error' });
      const aerr = await anthropic.messages.create({ ...message, stream: true }).catch((e: unknown) => e);
      expect(aerr).toMatchObject({ status: 502, error: { type: 'error', error: { type: 'api_error' } } });
      const events = await newEvents();
      expect(events.map((e) => [e.outcome, toMicro(e.cost_micro), e.http_status])).toEqual([['upstream_error', 0, 500], ['upstream_error', 0, 500]]);
      expect(await spend()).toBe(before);
    });

    it('passes an upstream 4xx through with its body, uncharged', async () => {
      await newEvents();
      fake.setMode('status:429');
      const err = await openai.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect((err as Error).message).toContain('Fake upstream error with status 429');
      fake.setMode('status:400');
      await expect(anthropic.messages.create(message)).rejects.toMatchObject({ status: 400, error: { error: { type: 'invalid_request_error' } } });
      const events = await newEvents();
      expect(events.map((e) => [e.outcome, toMicro(e.cost_micro), e.http_status])).toEqual([['upstream_error', 0, 429], ['upstream_error', 0, 400]]);
    });

    it('turns an upstream 401 (the operator’s provider key) into a 502 that reveals nothing of it', async () => {
      fake.setMode('status:401');
      const r = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${openai.apiKey}` }, body: JSON.stringify(chat) });
      expect(r.status).toBe(502);
      const body = await r.json();
      expect(body.error.code).toBe('upstream_error');
      expect(body.error.message).not.toContain('Incorrect API key');
      await newEvents();
    });

    it('answers 504 when the upstream does not answer in time', async () => {
      await newEvents();
      fake.setMode('hang');
      const err = await openai.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 504, code: 'upstream_error' });
      await expect(anthropic.messages.create(message)).rejects.toMatchObject({ status: 504, error: { error: { type: 'timeout_error' } } });
      const events = await newEvents();
      expect(events.map((e) => [e.outcome, toMicro(e.cost_micro), e.http_status])).toEqual([['upstream_error', 0, 504], ['upstream_error', 0, 504]]);
      await vi.waitFor(() => expect(fake.requests.every((r) => r.outcome === 'client-closed')).toBe(true));
    });

    it('answers 502 when the upstream cannot be reached', async () => {
      const down = await startTestApp({ env: { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', OPENAI_API_KEY: 'sk-o' } });
      try {
        const owner = await makeUser(down.services, { prepaidMicro: 1_000_000 });
        const { secret } = await makeKey(down.services, owner);
        const err = await new OpenAI({ apiKey: secret, baseURL: `${down.url}/v1`, maxRetries: 0 }).chat.completions.create(chat).catch((e: unknown) => e);
        expect(err).toMatchObject({ status: 502, code: 'upstream_error' });
        expect((await down.t.db('usage_events')).map((e) => [e.outcome, toMicro(e.cost_micro)])).toEqual([['upstream_error', 0]]);
        await expectMeteringInvariants(down.t.db);
      } finally {
        await down.close();
      }
    });

    it('answers 502 when a non-streaming body is cut off, uncharged', async () => {
      await newEvents();
      fake.setMode('abort-mid-stream');
      await expect(openai.chat.completions.create(chat)).rejects.toMatchObject({ status: 502 });
      const events = await newEvents();
      expect(events.map((e) => [e.outcome, toMicro(e.cost_micro)])).toEqual([['upstream_error', 0]]);
      expect(fake.served).toBe(0);
    });
  });

  describe('a success that reports no usage', () => {
    it('is charged never below the real usage: the whole input bound, and the answer’s bytes for output, estimated', async () => {
      await newEvents();
      fake.setMode('no-usage');
      const answer = await openai.chat.completions.create(chat);
      expect(answer.choices[0]?.message.content).toBe('tok '.repeat(8));
      const [event] = await newEvents();
      const real = fake.expectedUsage(chat);
      expect(event).toMatchObject({ outcome: 'ok', input_tokens: inputTokenBound(chat) });
      expect(event.input_tokens).toBeGreaterThanOrEqual(real.inputTokens);
      expect(event.output_tokens).toBeGreaterThanOrEqual(real.outputTokens);
      expect(event.output_tokens).toBeLessThanOrEqual(chat.max_tokens ?? Infinity);
      expect(Boolean(event.estimated)).toBe(true);
    });
  });

  describe('a stream cut off by the upstream after output', () => {
    it('tells the client with an error event and charges what it received, estimated', async () => {
      await newEvents();
      fake.setMode('abort-mid-stream');
      const got: string[] = [];
      const err = await (async () => {
        for await (const c of await openai.chat.completions.create({ ...chat, stream: true })) got.push(c.choices[0]?.delta.content ?? '');
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(got.join('')).toBe('tok tok ');
      const [event] = await newEvents();
      // the input bound, and the output received counted with the model's tokenizer (at least one per delta)
      const input = inputTokenBound({ ...chat, stream: true });
      const output = Math.max(2, await countTokens('tok tok ', 'o200k_base'));
      expect(event).toMatchObject({ outcome: 'upstream_error', input_tokens: input, output_tokens: output });
      expect(Boolean(event.estimated)).toBe(true);
      const mini = (await app.services.models.find('gpt-4o-mini'))!;
      expect(toMicro(event.cost_micro)).toBe(requestCost(mini, { inputTokens: input, outputTokens: output }));
      // The error event says what was charged, not "Nothing was charged".
      expect((err as Error).message).toBe(`The upstream failed mid-stream; you were charged for what you received: ${input} input and ${output} output tokens.`);
    });

    it('records a broken Anthropic stream as upstream_error too, and says what was charged', async () => {
      await newEvents();
      fake.setMode('abort-mid-stream');
      const body = { ...message, stream: true as const };
      const err = await (async () => {
        for await (const _ of await anthropic.messages.create(body));
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.APIError);
      const [event] = await newEvents();
      expect(event).toMatchObject({ outcome: 'upstream_error', input_tokens: fake.expectedUsage(body).inputTokens, http_status: 200 });
      expect(Boolean(event.estimated)).toBe(true);
      expect(event.output_tokens).toBeGreaterThanOrEqual(2);
      expect((err as InstanceType<typeof Anthropic.APIError>).error).toEqual({ type: 'error', error: { type: 'api_error',
        message: `The upstream failed mid-stream; you were charged for what you received: ${event.input_tokens} input and ${event.output_tokens} output tokens.` } });
    });
  });

  describe('an error event from the upstream mid-stream', () => {
    it('is passed to the client and recorded as upstream_error, charged for what was received (OpenAI)', async () => {
      await newEvents();
      fake.setMode('error-mid-stream');
      const got: string[] = [];
      const err = await (async () => {
        for await (const c of await openai.chat.completions.create({ ...chat, stream: true })) got.push(c.choices[0]?.delta.content ?? '');
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as Error).message).toContain('(fake)');
      expect(got.join('')).toBe('tok tok ');
      const event = await settledEvent();
      expect(event).toMatchObject({ outcome: 'upstream_error', input_tokens: inputTokenBound({ ...chat, stream: true }) });
      expect(Boolean(event.estimated)).toBe(true);
      expect(event.output_tokens).toBeGreaterThanOrEqual(2);
    });

    it('is passed to the client and recorded as upstream_error, charged for what was received (Anthropic)', async () => {
      await newEvents();
      fake.setMode('error-mid-stream');
      const body = { ...message, stream: true as const };
      const err = await (async () => {
        for await (const _ of await anthropic.messages.create(body));
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.APIError);
      expect((err as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ error: { type: 'overloaded_error' } });
      const event = await settledEvent();
      expect(event).toMatchObject({ outcome: 'upstream_error', input_tokens: fake.expectedUsage(body).inputTokens });
      expect(Boolean(event.estimated)).toBe(true);
      expect(event.output_tokens).toBeGreaterThanOrEqual(2);
    });
  });

  describe('client aborts mid-stream', () => {
    it('aborts the upstream request and charges the input and the output so far once, estimated (OpenAI)', async () => {
      await newEvents();
      fake.setMode('drip');
      const body = { ...chat, max_tokens: 50, stream: true as const };
      fake.setReplyTokens(40);
      const stream = await openai.chat.completions.create(body);
      let chunks = 0;
      for await (const _ of stream) if (++chunks === 3) stream.controller.abort();
      await vi.waitFor(() => expect(fake.requests[0]!.outcome).toBe('client-closed'));
      let events: Record<string, any>[] = [];
      await vi.waitFor(async () => {
        events = [...events, ...(await newEvents())];
        expect(events).toHaveLength(1);
      });
      const event = events[0]!;
      const input = inputTokenBound(body);
      expect(event).toMatchObject({ outcome: 'client_aborted', input_tokens: input, http_status: 499 });
      expect(Boolean(event.estimated)).toBe(true);
      expect(event.output_tokens).toBeGreaterThanOrEqual(2);
      expect(event.output_tokens).toBeLessThan(40);
      const mini = (await app.services.models.find('gpt-4o-mini'))!;
      expect(toMicro(event.cost_micro)).toBe(requestCost(mini, { inputTokens: input, outputTokens: event.output_tokens }));
      expect(fake.served).toBe(0);
    });

    it('charges the reported input and the deltas so far (Anthropic)', async () => {
      await newEvents();
      fake.setMode('drip');
      fake.setReplyTokens(40);
      const body = { ...message, max_tokens: 50, stream: true as const };
      const stream = await anthropic.messages.create(body);
      let n = 0;
      for await (const _ of stream) if (++n === 4) stream.controller.abort();
      await vi.waitFor(() => expect(fake.requests[0]!.outcome).toBe('client-closed'));
      let events: Record<string, any>[] = [];
      await vi.waitFor(async () => {
        events = [...events, ...(await newEvents())];
        expect(events).toHaveLength(1);
      });
      const event = events[0]!;
      expect(event).toMatchObject({ outcome: 'client_aborted', input_tokens: fake.expectedUsage(body).inputTokens });
      expect(Boolean(event.estimated)).toBe(true);
      expect(event.output_tokens).toBeGreaterThanOrEqual(2);
      expect(event.output_tokens).toBeLessThan(40);
    });

    it('aborts a non-streaming upstream request when its client leaves', async () => {
      await newEvents();
      fake.setMode('hang');
      const controller = new AbortController();
      const pending = openai.chat.completions.create(chat, { signal: controller.signal }).catch((e: unknown) => e);
      await vi.waitFor(() => expect(fake.requests).toHaveLength(1));
      controller.abort();
      await pending;
      await vi.waitFor(() => expect(fake.requests[0]!.outcome).toBe('client-closed'));
      let events: Record<string, any>[] = [];
      await vi.waitFor(async () => {
        events = [...events, ...(await newEvents())];
        expect(events).toHaveLength(1);
      });
      expect(events[0]).toMatchObject({ outcome: 'client_aborted', output_tokens: 0 });
    });
  });
});
