import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost, type CatalogModel } from '../../src/domain/models/models.service.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const PROVIDER_KEY = 'sk-ant-provider-test';

describe(`Anthropic Messages through the official SDK (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let anthropic: Anthropic;
  let secret: string;
  let keyId: string;
  let haiku: CatalogModel;
  const body = { model: 'claude-haiku-4-5', max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Hello, Claude' }] };

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({ env: { ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: PROVIDER_KEY } });
    const owner = await makeUser(app.services, { prepaidMicro: 20_000_000 });
    const created = await makeKey(app.services, owner, { name: 'claude key' });
    secret = created.secret;
    keyId = created.key.id;
    anthropic = new Anthropic({ apiKey: secret, baseURL: app.url, maxRetries: 0 });
    haiku = (await app.services.models.find('claude-haiku-4-5'))!;
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const eventsOf = async (id = keyId) => app.t.db('usage_events').where({ key_id: id }).orderBy('id');

  it('answers a message and charges it once at the catalog price', async () => {
    const before = (await eventsOf()).length;
    const res = await anthropic.messages.create(body);
    const exp = fake.expectedUsage(body);
    expect(res.content).toEqual([{ type: 'text', text: 'tok '.repeat(exp.outputTokens) }]);
    const events = (await eventsOf()).slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ provider: 'anthropic', endpoint: '/v1/messages', outcome: 'ok', input_tokens: exp.inputTokens, output_tokens: exp.outputTokens });
    expect(toMicro(events[0].cost_micro)).toBe(requestCost(haiku, exp));
    expect(fake.served).toBe(1);
  });

  it('counts tokens through the upstream for free (Claude Code calls /v1/messages/count_tokens)', async () => {
    const before = (await eventsOf()).length;
    const counted = await anthropic.messages.countTokens({ model: body.model, system: body.system, messages: body.messages });
    expect(counted.input_tokens).toBe(fake.expectedUsage(body).inputTokens);
    const rec = fake.requests[0]!;
    expect(rec.path).toBe('/v1/messages/count_tokens');
    expect(rec.headers['x-api-key']).toBe(PROVIDER_KEY);
    expect(JSON.stringify(rec.headers)).not.toContain(secret);
    expect(await eventsOf()).toHaveLength(before);
    expect(await app.t.db('holds')).toHaveLength(0);

    await expect(anthropic.messages.countTokens({ model: 'no-such-model', messages: body.messages })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(new Anthropic({ apiKey: 'mbk_wrong', baseURL: app.url, maxRetries: 0 }).messages.countTokens({ model: body.model, messages: body.messages }))
      .rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    fake.setMode('error');
    await expect(anthropic.messages.countTokens({ model: body.model, messages: body.messages })).rejects.toMatchObject({ status: 502 });
    fake.setMode('ok');
  });

  it('sends the provider key and an anthropic-version upstream, never the client key', async () => {
    await anthropic.messages.create(body);
    const rec = fake.requests[0]!;
    expect(rec.path).toBe('/v1/messages');
    expect(rec.headers['x-api-key']).toBe(PROVIDER_KEY);
    expect(rec.headers.authorization).toBeUndefined();
    expect(rec.headers['anthropic-version']).toBeTruthy();
    expect(JSON.stringify(rec.headers)).not.toContain(secret);
    expect(rec.body).toEqual(body);
  });

  it('streams the event sequence unchanged and charges message_start input + message_delta output', async () => {
    const before = (await eventsOf()).length;
    const streamBody = { ...body, max_tokens: 5, stream: true as const };
    const types: string[] = [];
    for await (const e of await anthropic.messages.create(streamBody)) types.push(e.type);
    expect(types).toEqual(['message_start', 'content_block_start', ...Array(5).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    const exp = fake.expectedUsage(streamBody);
    const events = (await eventsOf()).slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'ok', input_tokens: exp.inputTokens, output_tokens: 5 });
    expect(Boolean(events[0].streamed)).toBe(true);
    expect(Boolean(events[0].estimated)).toBe(false);
    expect(toMicro(events[0].cost_micro)).toBe(requestCost(haiku, { inputTokens: exp.inputTokens, outputTokens: 5 }));
  });

  it('works with the SDK stream helper', async () => {
    const before = (await eventsOf()).length;
    const final = await anthropic.messages.stream(body).finalMessage();
    const exp = fake.expectedUsage(body);
    expect(final.usage).toMatchObject({ input_tokens: exp.inputTokens, output_tokens: exp.outputTokens });
    const events = (await eventsOf()).slice(before);
    expect(events).toHaveLength(1);
    expect(toMicro(events[0].cost_micro)).toBe(requestCost(haiku, exp));
  });

  it('charges a team key to the team balance only', async () => {
    const owner = await makeUser(app.services);
    const team = await makeTeam(app.services, owner, { balanceMicro: 1_000_000 });
    const { secret: teamSecret, key } = await makeKey(app.services, owner, { teamId: team.id });
    const client = new Anthropic({ apiKey: teamSecret, baseURL: app.url, maxRetries: 0 });
    await client.messages.create(body);
    const exp = fake.expectedUsage(body);
    const cost = requestCost(haiku, exp);
    const [event] = await eventsOf(key.id);
    expect(event).toMatchObject({ team_id: team.id });
    expect(toMicro(event.team_micro)).toBe(cost);
    expect(toMicro((await app.t.db('teams').where({ id: team.id }).first()).balance_micro)).toBe(1_000_000 - cost);
    const personal = await app.t.db('personal_balances').where({ user_id: owner.user.id }).first();
    expect(toMicro(personal.included_used_micro)).toBe(0);
  });

  it('lists the Anthropic models in the Anthropic format', async () => {
    const page = await anthropic.models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['claude-haiku-4-5', 'claude-sonnet-4-5']));
    expect(ids).not.toContain('gpt-4o-mini');
    expect(page.data[0]!.type).toBe('model');
  });
});
