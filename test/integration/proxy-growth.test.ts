import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeEach, describe, expect, it } from 'vitest';
import { OUTPUT_INCREMENT_TOKENS } from '../../src/domain/billing/growth.js';
import { requestCost } from '../../src/domain/models/pricing.js';
import { tokenCost, toMicro } from '../../src/domain/money.js';
import { newId } from '../../src/domain/ids.js';
import { NO_TOKENS } from '../../src/domain/models/pricing.js';
import { dialect } from '../support/db.js';
import { signIn } from '../support/portal.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { proxyFixture } from '../support/proxy-fixture.js';

// Holds that grow with the stream, end to end: Claude Code-sized streaming requests (max_tokens 128,000, a large
// body, a few thousand tokens of output, drip-streamed) on keys with modest limits. Parallel streams are admitted
// and served when their real cost fits; when it does not, they are cut where their holds end — well formed for the
// official SDKs — and the key's spend ends within the documented bound.

const MODEL = 'claude-opus-5-5';
const f = proxyFixture({ fake: { tokensPerDelta: 50, dripMs: 5 }, prepaidMicro: 500_000_000 });

/** A Claude Code-sized turn: ~`kb` KB of context, max_tokens 128,000. */
const turn = (kb: number) => ({
  model: MODEL,
  max_tokens: 128_000,
  system: 'You are Claude Code. '.repeat(20),
  messages: [{ role: 'user' as const, content: `${'Here is the file you asked for. '.repeat(Math.round((kb * 1024) / 32))}\nWhat does it do?` }],
});

async function keyWith(limitMicro: number, teamBalanceMicro?: number) {
  const owner = await makeUser(f.app.services, { prepaidMicro: 100_000_000 });
  const team = teamBalanceMicro === undefined ? undefined : await makeTeam(f.app.services, owner, { balanceMicro: teamBalanceMicro });
  const { key, secret } = await makeKey(f.app.services, owner, { spendLimitMicro: limitMicro, teamId: team?.id });
  return {
    key, team, owner, secret,
    anthropic: new Anthropic({ apiKey: secret, baseURL: f.app.url, maxRetries: 0 }),
    openai: new OpenAI({ apiKey: secret, baseURL: `${f.app.url}/v1`, maxRetries: 0 }),
  };
}

async function events(keyId: string) {
  return f.app.t.db('usage_events').where({ key_id: keyId });
}
async function keyRow(keyId: string) {
  const k = await f.app.t.db('api_keys').where({ id: keyId }).first();
  return { spend: toMicro(k.spend_micro), held: toMicro(k.held_micro) };
}
async function model() {
  const m = await f.app.services.models.lookup(MODEL);
  if (!m) throw new Error(`${MODEL} is not in the catalog`);
  return m;
}

describe(`holds that grow with the stream (${dialect})`, () => {
  beforeEach(() => f.fake.setMode('drip'));

  it('serves 2 and then 8 parallel Claude Code-sized streams on a 10 AUD key, each charged its exact usage', async () => {
    f.fake.setReplyTokens(3_000);
    const { key, anthropic } = await keyWith(10_000_000);
    const m = await model();
    for (const parallel of [2, 8]) {
      const before = (await events(key.id)).length;
      const messages = await Promise.all(Array.from({ length: parallel }, () => anthropic.messages.stream(turn(40)).finalMessage()));
      for (const message of messages) expect(message.stop_reason).toBe('end_turn');
      const charged = (await events(key.id)).slice(before);
      expect(charged).toHaveLength(parallel);
      const expected = f.fake.expectedTokens(turn(40), 'anthropic');
      for (const e of charged) {
        expect(e.outcome).toBe('ok');
        expect(Number(e.output_tokens)).toBe(3_000);
        expect(toMicro(e.cost_micro)).toBe(requestCost(m, expected));
      }
    }
    expect((await keyRow(key.id)).held).toBe(0);
  });

  const cutScenario = async (o: { parallel: number; limitMicro: number; teamBalanceMicro?: number; api: 'anthropic' | 'openai' }) => {
    f.fake.setReplyTokens(20_000);
    const a = await keyWith(o.limitMicro, o.teamBalanceMicro);
    const body = turn(4);
    const results = await Promise.allSettled(Array.from({ length: o.parallel }, async () => {
      if (o.api === 'anthropic') return (await a.anthropic.messages.stream(body).finalMessage()).stop_reason;
      const chat = a.openai.chat.completions.stream({ model: MODEL, max_tokens: 128_000, stream_options: { include_usage: true }, messages: [{ role: 'system', content: body.system }, ...body.messages] });
      return (await chat.finalChatCompletion()).choices[0]!.finish_reason;
    }));
    return { a, results };
  };

  it('cuts 40 parallel streams where the limit ends: well formed, within the bound, every served request charged', async () => {
    const limitMicro = 5_000_000;
    const { a, results } = await cutScenario({ parallel: 40, limitMicro, api: 'anthropic' });
    const reasons = results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as { status?: number }).status));
    // Every stream finished cleanly for the SDK — whole, or cut as if at its output cap — or was refused before any hold.
    for (const r of reasons) expect(['end_turn', 'max_tokens', 429]).toContain(r);
    expect(reasons.filter((r) => r === 'max_tokens').length).toBeGreaterThan(0);
    const charged = await events(a.key.id);
    const cut = charged.filter((e: Record<string, unknown>) => e.outcome === 'cut_at_limit');
    expect(cut.length).toBe(reasons.filter((r) => r === 'max_tokens').length);
    // The upstream served exactly the requests that were charged.
    expect(f.fake.requests.length).toBe(charged.length);
    const m = await model();
    const { spend, held } = await keyRow(a.key.id);
    expect(held).toBe(0);
    expect(spend).toBeLessThanOrEqual(limitMicro + cut.length * tokenCost(OUTPUT_INCREMENT_TOKENS, m.outputMicroPerMTok));
    // …and the limit was put to use, not left idle by holds that never grew.
    expect(spend).toBeGreaterThan(limitMicro * 0.8);
  }, 60_000);

  it('cuts streams of many keys on one small team balance within the bound', async () => {
    const balance = 3_000_000;
    const { a, results } = await cutScenario({ parallel: 30, limitMicro: 100_000_000, teamBalanceMicro: balance, api: 'anthropic' });
    for (const r of results) expect(r.status === 'fulfilled' ? ['end_turn', 'max_tokens'] : [429]).toContain(r.status === 'fulfilled' ? r.value : (r.reason as { status?: number }).status);
    const team = await f.app.t.db('teams').where({ id: a.team!.id }).first();
    const cut = (await events(a.key.id)).filter((e: Record<string, unknown>) => e.outcome === 'cut_at_limit').length;
    const m = await model();
    expect(toMicro(team.held_micro)).toBe(0);
    expect(toMicro(team.balance_micro)).toBeGreaterThanOrEqual(-cut * tokenCost(OUTPUT_INCREMENT_TOKENS, m.outputMicroPerMTok));
    expect(cut).toBeGreaterThan(0);
  }, 60_000);

  it('ends a cut OpenAI stream with finish_reason "length" and [DONE], so the SDK stream helper finishes', async () => {
    f.fake.setReplyTokens(20_000);
    const { key, openai } = await keyWith(400_000);
    const stream = openai.chat.completions.stream({ model: 'gpt-5.5', max_completion_tokens: 100_000, messages: [{ role: 'user', content: 'Write a long story.' }] });
    const done = await stream.finalChatCompletion();
    expect(done.choices[0]!.finish_reason).toBe('length');
    const [e] = await events(key.id);
    expect(e.outcome).toBe('cut_at_limit');
    const m = await f.app.services.models.lookup('gpt-5.5');
    const { spend } = await keyRow(key.id);
    expect(spend).toBeLessThanOrEqual(400_000 + tokenCost(OUTPUT_INCREMENT_TOKENS, m!.outputMicroPerMTok));
    expect(f.fake.requests[0]!.outcome).toBe('client-closed');
  }, 30_000);

  it('says in the stream why it was cut and how to raise the limit', async () => {
    f.fake.setReplyTokens(20_000);
    const { anthropic } = await keyWith(300_000);
    const response = await anthropic.messages.create({ ...turn(1), stream: true }).asResponse();
    const text = await response.text();
    expect(text).toMatch(/event: message_delta\ndata: \{"type":"message_delta","delta":\{"stop_reason":"max_tokens"/);
    expect(text).toMatch(/event: message_stop/);
    expect(text).toMatch(/^: ModelBridge ended this response here: This API key’s spending limit \(0\.3 AUD.*Raise or remove the limit/m);
    expect(text.indexOf('message_stop')).toBeLessThan(text.indexOf(': ModelBridge'));
  }, 30_000);

  it('shows what is held right now next to spend: GET /v1/key and the key page', async () => {
    const { key, owner, secret } = await keyWith(10_000_000);
    const hold = await f.app.services.metering.admit({ requestId: newId(), keyId: key.id, estimateMicro: 560_000, model: MODEL, provider: 'anthropic', endpoint: '/v1/messages', streamed: true });
    const portal = await signIn(f.app, owner.email, owner.password);
    expect((await portal.get(`/keys/${key.id}`)).text).toContain('A$0.56 held by requests in flight');
    const status = await fetch(`${f.app.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } });
    expect(await status.json()).toMatchObject({ spend_aud: '0', held_aud: '0.56', limit_aud: '10' });
    await f.app.services.metering.settle(hold, { ...NO_TOKENS, costMicro: 0, outcome: 'ok', estimated: false, httpStatus: 200, latencyMs: 1 });
    expect((await portal.get(`/keys/${key.id}`)).text).not.toContain('held by requests in flight');
  });

  it('keeps the whole worst case for a non-streaming request, and its 429 says what would let it in', async () => {
    const { key, anthropic } = await keyWith(10_000_000);
    const other = await f.app.services.metering.admit({ requestId: newId(), keyId: key.id, estimateMicro: 7_000_000, model: MODEL, provider: 'anthropic', endpoint: '/v1/messages', streamed: false });
    const refused = await anthropic.messages.create(turn(4), { timeout: 30_000 }).catch((err: unknown) => err as { status: number; message: string });
    expect(refused).toMatchObject({ status: 429 });
    expect((refused as { message: string }).message).toMatch(/may cost up to 4\.\d+ AUD .* and 3 AUD is free: a lower max_tokens, streaming \(which holds as it goes\) or a higher limit lets it in/);
    // The same turn streamed fits beside it.
    f.fake.setReplyTokens(100);
    expect((await anthropic.messages.stream(turn(4)).finalMessage()).stop_reason).toBe('end_turn');
    await f.app.services.metering.settle(other, { ...NO_TOKENS, costMicro: 0, outcome: 'ok', estimated: false, httpStatus: 200, latencyMs: 1 });
  });

  it('cuts a Responses API stream at its hold with response.incomplete (max_output_tokens) carrying the text streamed so far', async () => {
    f.fake.setReplyTokens(20_000);
    const { key, openai } = await keyWith(400_000);
    const stream = openai.responses.stream({ model: 'gpt-5.5', input: 'Write a long story.', max_output_tokens: 100_000 });
    let streamed = '';
    const types: string[] = [];
    stream.on('response.output_text.delta', (e) => { streamed += e.delta; });
    stream.on('event', (e) => { types.push(e.type); });
    const final = await stream.finalResponse();
    expect(types.at(-1)).toBe('response.incomplete');
    expect(final).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
    expect(final.id).toMatch(/^resp_/);
    expect(streamed.length).toBeGreaterThan(0);
    expect(final.output_text).toBe(streamed);
    const [e] = await events(key.id);
    expect(e.outcome).toBe('cut_at_limit');
    const m = await f.app.services.models.lookup('gpt-5.5');
    expect((await keyRow(key.id)).spend).toBeLessThanOrEqual(400_000 + tokenCost(OUTPUT_INCREMENT_TOKENS, m!.outputMicroPerMTok));
  }, 30_000);
});
