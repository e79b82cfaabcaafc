import OpenAI from 'openai';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { inputTokenBound } from '../../src/proxy/estimate.js';
import type { TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import type { FakeUpstream, TokenKinds } from '../support/fake-upstream.js';
import { proxyFixture } from '../support/proxy-fixture.js';

const MODEL = 'gpt-4.1';
const ask = (text: string, extra: Record<string, unknown> = {}) => ({ model: MODEL, input: [{ role: 'user' as const, content: text }], ...extra });

/**
 * The cost of a request by kind, computed here without the product's pricing code: micro-AUD per million tokens,
 * the input side (fresh + cached) rounded up once and the output once (docs/metering.md, "Rounding").
 */
function costOf(m: CatalogModel, k: TokenKinds): number {
  const ceilDiv = (n: bigint) => Number((n + 999_999n) / 1_000_000n);
  const input = BigInt(k.inputTokens) * BigInt(m.inputMicroPerMTok) + BigInt(k.cachedInputTokens) * BigInt(m.cachedInputMicroPerMTok ?? m.inputMicroPerMTok);
  return ceilDiv(input) + ceilDiv(BigInt(k.outputTokens) * BigInt(m.outputMicroPerMTok));
}

describe(`POST /v1/responses through the official SDK (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let openai: OpenAI;
  let keyId: string;
  let model: CatalogModel;
  const f = proxyFixture({ fake: { dripMs: 30, lateUsageMs: 400 }, nothingHeld: true });
  beforeAll(async () => {
    ({ fake, app, openai, keyId } = f);
    model = (await app.services.models.find(MODEL))!;
    expect(model.cachedInputMicroPerMTok).toBeLessThan(model.inputMicroPerMTok);
  });
  let seen = 0;
  beforeEach(async () => {
    seen = (await app.t.db('usage_events').where({ key_id: keyId })).length;
  });

  /** The usage events of the requests made in this test, once `n` are settled. */
  async function settled(n = 1): Promise<Record<string, any>[]> {
    let fresh: Record<string, any>[] = [];
    await vi.waitFor(async () => {
      fresh = (await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id')).slice(seen);
      expect(fresh).toHaveLength(n);
    }, { timeout: 5_000 });
    return fresh;
  }

  function expectBilled(event: Record<string, any>, k: TokenKinds, outcome = 'ok') {
    expect(event).toMatchObject({
      endpoint: '/v1/responses', provider: 'openai', model: MODEL, outcome,
      input_tokens: k.inputTokens, cached_input_tokens: k.cachedInputTokens, output_tokens: k.outputTokens, reasoning_tokens: k.reasoningTokens,
    });
    expect(Boolean(event.estimated)).toBe(false);
    expect(toMicro(event.cost_micro)).toBe(costOf(model, k));
  }

  it('answers a JSON response and bills cached and reasoning tokens kind by kind, exactly', async () => {
    fake.setUsageDetails({ cacheReadTokens: 20, reasoningTokens: 5 });
    const body = ask('Summarise the repository layout. '.repeat(10), { instructions: 'Be brief.', max_output_tokens: 100 });
    const k = fake.expectedResponseTokens(body);
    expect(k).toMatchObject({ cachedInputTokens: 20, reasoningTokens: 5, outputTokens: 13 });
    const res = await openai.responses.create(body);
    expect(res.status).toBe('completed');
    expect(res.output_text).toBe('tok '.repeat(8));
    expect(res.usage).toMatchObject({ input_tokens: k.inputTokens + 20, output_tokens: 13, output_tokens_details: { reasoning_tokens: 5 } });
    const [event] = await settled();
    expectBilled(event!, k);
    expect(event!.http_status).toBe(200);
    expect(fake.requests[0]!.path).toBe('/v1/responses');
    expect(fake.requests[0]!.body).toEqual(body);
    // recorded for its account, so it can be read back (see the stored-response tests)
    expect(await app.t.db('stored_responses').where({ response_id: res.id }).first()).toMatchObject({ key_id: keyId });
  });

  it('streams the event sequence through unchanged and bills the usage of response.completed', async () => {
    fake.setUsageDetails({ cacheReadTokens: 4, reasoningTokens: 3 });
    const body = ask('Stream a short answer');
    const k = fake.expectedResponseTokens(body);
    const types: string[] = [];
    let text = '';
    for await (const e of await openai.responses.create({ ...body, stream: true })) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
    }
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.at(-1)).toBe('response.completed');
    expect(text).toBe('tok '.repeat(8));
    const [event] = await settled();
    expectBilled(event!, k);
    expect(Boolean(event!.streamed)).toBe(true);
  });

  it('works with the SDK’s responses.stream helper', async () => {
    const body = ask('Use the helper');
    const stream = openai.responses.stream(body);
    const final = await stream.finalResponse();
    expect(final.output_text).toBe('tok '.repeat(8));
    const [event] = await settled();
    expectBilled(event!, fake.expectedResponseTokens({ ...body, stream: true }));
  });

  it('carries a function-call round trip, each turn billed exactly', async () => {
    fake.setResponsesToolCall({ name: 'get_weather', arguments: '{"city":"Sydney","unit":"celsius"}' });
    const tools = [{ type: 'function' as const, name: 'get_weather', description: 'Weather of a city', strict: true,
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city', 'unit'], additionalProperties: false } }];
    const first = ask('What is the weather in Sydney?', { tools });
    const streamed = openai.responses.stream(first);
    const argumentDeltas: string[] = [];
    streamed.on('response.function_call_arguments.delta', (e) => argumentDeltas.push(e.delta));
    const turn1 = await streamed.finalResponse();
    const call = turn1.output[0]!;
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Sydney","unit":"celsius"}' });
    expect(argumentDeltas.join('')).toBe('{"city":"Sydney","unit":"celsius"}');
    if (call.type !== 'function_call') throw new Error('no call');
    const second = { ...first, input: [...first.input, { type: 'function_call' as const, call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output' as const, call_id: call.call_id, output: '{"temperature":23}' }] };
    const turn2 = await openai.responses.create(second);
    expect(turn2.output_text).toBe('tok '.repeat(8));
    const [e1, e2] = await settled(2);
    expectBilled(e1!, fake.expectedResponseTokens({ ...first, stream: true }));
    expectBilled(e2!, fake.expectedResponseTokens(second));
  });

  it('bills response.incomplete (max_output_tokens) at its reported usage', async () => {
    const body = ask('Write a long essay', { max_output_tokens: 3 });
    const types: string[] = [];
    for await (const e of await openai.responses.create({ ...body, stream: true })) types.push(e.type);
    expect(types.at(-1)).toBe('response.incomplete');
    const [event] = await settled();
    expectBilled(event!, fake.expectedResponseTokens(body));
    expect(event!.output_tokens).toBe(3);
  });

  it('compacts through /v1/responses/compact, billed like a response', async () => {
    const body = ask('A long conversation to compact. '.repeat(20), { instructions: 'You are Codex.' });
    const compacted = await openai.responses.compact(body);
    expect(compacted.output[0]).toMatchObject({ type: 'compaction' });
    const [event] = await settled();
    const k = fake.expectedResponseTokens(body);
    expect(event).toMatchObject({ endpoint: '/v1/responses/compact', outcome: 'ok', input_tokens: k.inputTokens, output_tokens: k.outputTokens });
    expect(toMicro(event!.cost_micro)).toBe(costOf(model, k));
    expect(fake.requests[0]!.path).toBe('/v1/responses/compact');
  });

  describe('a client that closes its stream', () => {
    it('mid-generation: the upstream is aborted at once and the charge bounds what was received from above', async () => {
      fake.setMode('drip');
      fake.setReplyTokens(40);
      const body = ask('Tell me a long story');
      const stream = await openai.responses.create({ ...body, stream: true });
      let deltas = 0;
      for await (const e of stream) if (e.type === 'response.output_text.delta' && ++deltas === 3) stream.controller.abort();
      await vi.waitFor(() => expect(fake.requests[0]?.outcome).toBe('client-closed'), { timeout: 5_000 });
      const [event] = await settled();
      expect(event).toMatchObject({ outcome: 'client_aborted', http_status: 499, input_tokens: inputTokenBound({ ...body, stream: true }) });
      expect(Boolean(event!.estimated)).toBe(true);
      // never below what the provider bills for what it produced: every delta received is at least one token
      expect(event!.output_tokens).toBeGreaterThanOrEqual(3);
      expect(event!.output_tokens).toBeLessThan(40);
      expect(event!.input_tokens).toBeGreaterThanOrEqual(fake.expectedResponseTokens(body).inputTokens);
    });

    it('after response.completed: the stream is read to its end and the usage charged exactly', async () => {
      fake.setMode('late-usage');
      const body = ask('Answer then wait');
      const stream = await openai.responses.create({ ...body, stream: true });
      for await (const e of stream) if (e.type === 'response.completed') stream.controller.abort();
      await vi.waitFor(() => expect(fake.requests[0]?.outcome).toBe('completed'), { timeout: 5_000 });
      const [event] = await settled();
      expectBilled(event!, fake.expectedResponseTokens({ ...body, stream: true }), 'client_aborted');
    });
  });

  describe('upstream failures', () => {
    it('passes an upstream 4xx through and charges nothing', async () => {
      fake.setMode('status:400');
      await expect(openai.responses.create(ask('bad'))).rejects.toMatchObject({ status: 400 });
      const [event] = await settled();
      expect(event).toMatchObject({ outcome: 'upstream_error', http_status: 400 });
      expect(toMicro(event!.cost_micro)).toBe(0);
    });

    it('answers an upstream 5xx with a 502 and charges nothing', async () => {
      fake.setMode('status:500');
      await expect(openai.responses.create({ ...ask('boom'), stream: true })).rejects.toMatchObject({ status: 502 });
      const [event] = await settled();
      expect(event).toMatchObject({ outcome: 'upstream_error', http_status: 500 });
      expect(toMicro(event!.cost_micro)).toBe(0);
    });

    it('relays response.failed mid-stream and charges the output received, estimated', async () => {
      fake.setMode('error-mid-stream');
      const types: string[] = [];
      for await (const e of await openai.responses.create({ ...ask('fail half way'), stream: true })) types.push(e.type);
      expect(types.at(-1)).toBe('response.failed');
      const [event] = await settled();
      expect(event).toMatchObject({ outcome: 'upstream_error' });
      expect(Boolean(event!.estimated)).toBe(true);
      expect(event!.output_tokens).toBeGreaterThanOrEqual(2);
    });

    it('ends a stream the upstream broke with the Responses API’s error event, saying what was charged', async () => {
      fake.setMode('abort-mid-stream');
      const events: OpenAI.Responses.ResponseStreamEvent[] = [];
      for await (const e of await openai.responses.create({ ...ask('break'), stream: true })) events.push(e);
      expect(events.at(-1)).toMatchObject({ type: 'error', code: 'upstream_error', message: expect.stringMatching(/charged for what you received/) });
      const [event] = await settled();
      expect(event).toMatchObject({ outcome: 'upstream_error' });
      expect(event!.output_tokens).toBeGreaterThanOrEqual(2);
    });
  });

  describe('refused before any hold, never forwarded', () => {
    async function expectRefused(request: Promise<unknown>, status: number, message: RegExp) {
      const err = await request.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
      expect((err as Error).message).toMatch(message);
      expect(fake.requests).toHaveLength(0);
      expect(await app.t.db('usage_events').where({ key_id: keyId })).toHaveLength(seen);
    }

    it('an Anthropic model, with a 400 that names the endpoint serving it', async () => {
      await expectRefused(openai.responses.create({ model: 'claude-haiku-4-5', input: 'hi' }), 400, /served in the anthropic format: send it to POST \/v1\/messages, or \/v1\/chat\/completions \(translated\)/);
    });

    it('background mode', async () => {
      await expectRefused(openai.responses.create({ ...ask('later'), background: true }), 400, /background mode is not supported/);
    });

    it('a conversation', async () => {
      await expectRefused(openai.responses.create({ ...ask('hi'), conversation: 'conv_123' }), 400, /conversations are not supported/);
    });

    it('a previous_response_id not created through ModelBridge', async () => {
      fake.storedResponses.set('resp_elsewhere', { response: { id: 'resp_elsewhere', usage: { input_tokens: 1, output_tokens: 1 } }, inputItems: [] });
      await expectRefused(openai.responses.create({ ...ask('continue'), previous_response_id: 'resp_elsewhere' }), 404, /No response with id 'resp_elsewhere'/);
    });
  });

  it('chains on its own previous response and bills the context the provider added', async () => {
    const first = await openai.responses.create(ask('Remember the number 42'));
    const body = ask('What was the number?', { previous_response_id: first.id });
    const k = fake.expectedResponseTokens(body);
    expect(k.inputTokens).toBeGreaterThan(fake.expectedResponseTokens(ask('What was the number?')).inputTokens);
    await openai.responses.create(body);
    const [, event] = await settled(2);
    expectBilled(event!, k);
  });

  it('leaves GET /v1/models as it was', async () => {
    const ids = (await openai.models.list()).data.map((m) => m.id);
    expect(ids).toContain(MODEL);
    expect(fake.requests).toHaveLength(0);
  });

  describe('stored responses: only the account that created them', () => {
    // alice has two personal keys and a key of her team (the team's account, not hers); bob is someone else
    let alice: OpenAI;
    let aliceAgain: OpenAI;
    let aliceTeam: OpenAI;
    let bob: OpenAI;
    beforeAll(async () => {
      const client = (secret: string) => new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
      const a = await makeUser(app.services, { prepaidMicro: 5_000_000 });
      const b = await makeUser(app.services, { prepaidMicro: 5_000_000 });
      const team = await makeTeam(app.services, a, { balanceMicro: 5_000_000 });
      alice = client((await makeKey(app.services, a)).secret);
      aliceAgain = client((await makeKey(app.services, a)).secret);
      aliceTeam = client((await makeKey(app.services, a, { teamId: team.id })).secret);
      bob = client((await makeKey(app.services, b)).secret);
    });

    it('retrieves, lists the input items of and deletes a response for keys of the same owner, unmetered', async () => {
      const created = await alice.responses.create(ask('Keep this'));
      const events = (await app.t.db('usage_events')).length;
      expect((await aliceAgain.responses.retrieve(created.id)).output_text).toBe('tok '.repeat(8));
      const items = await alice.responses.inputItems.list(created.id);
      expect(items.data[0]).toMatchObject({ type: 'message', role: 'user' });
      await aliceAgain.responses.delete(created.id);
      expect(fake.storedResponses.has(created.id)).toBe(false);
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/responses', `GET /v1/responses/${created.id}`, `GET /v1/responses/${created.id}/input_items`, `DELETE /v1/responses/${created.id}`]);
      expect(fake.requests[1]!.headers.authorization).toBe('Bearer sk-o');
      // deleted: a later read is refused here
      await expect(alice.responses.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
      expect(fake.requests).toHaveLength(4);
      expect(await app.t.db('usage_events')).toHaveLength(events);
    });

    it('answers 404 to another user’s key, and to the same user’s team key, without calling the upstream', async () => {
      const created = await alice.responses.create(ask('Private'));
      for (const client of [bob, aliceTeam]) {
        await expect(client.responses.retrieve(created.id)).rejects.toMatchObject({ status: 404, code: 'response_not_found', type: 'invalid_request_error' });
        await expect(client.responses.inputItems.list(created.id)).rejects.toMatchObject({ status: 404 });
        await expect(client.responses.delete(created.id)).rejects.toMatchObject({ status: 404 });
        await expect(client.responses.create({ ...ask('continue'), previous_response_id: created.id })).rejects.toMatchObject({ status: 404 });
      }
      expect(fake.requests).toHaveLength(1);
      expect(fake.storedResponses.has(created.id)).toBe(true);
      expect(await app.t.db('holds')).toHaveLength(0);
    });

    it('lets a team key read its team’s responses, and not its member’s personal key', async () => {
      const created = await aliceTeam.responses.create(ask('Team work'));
      expect((await aliceTeam.responses.retrieve(created.id)).id).toBe(created.id);
      await expect(alice.responses.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
      expect(fake.requests).toHaveLength(2);
    });

    it('answers 404 to an id that exists upstream but was not created through ModelBridge', async () => {
      fake.storedResponses.set('resp_direct', { response: { id: 'resp_direct' }, inputItems: [] });
      await expect(alice.responses.retrieve('resp_direct')).rejects.toMatchObject({ status: 404 });
      await expect(alice.responses.delete('resp_direct')).rejects.toMatchObject({ status: 404 });
      expect(fake.requests).toHaveLength(0);
    });

    it('lets a key at its spend limit read its responses, and refuses a revoked key', async () => {
      const carol = await makeUser(app.services, { prepaidMicro: 5_000_000 });
      const { key, secret } = await makeKey(app.services, carol);
      const client = new OpenAI({ apiKey: secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
      const created = await client.responses.create(ask('Before the limit'));
      await app.services.keys.update(key.id, { spendLimitMicro: 1 }, carol.actor);
      await expect(client.responses.create(ask('over'))).rejects.toMatchObject({ status: 429 });
      expect((await client.responses.retrieve(created.id)).id).toBe(created.id);
      await app.services.keys.revoke(key.id, carol.actor);
      await expect(client.responses.retrieve(created.id)).rejects.toMatchObject({ status: 401, code: 'key_revoked' });
      expect(fake.requests.map((r) => r.method)).toEqual(['POST', 'GET']);
    });

    it('refuses a request without a key before looking anything up', async () => {
      const res = await fetch(`${app.url}/v1/responses/resp_x`);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
    });
  });
});
