import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestCost } from '../../src/domain/models/models.service.js';
import type { ModelBridgeClient } from '../../src/client.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { clientFor, expectTrpcError } from '../support/trpc.js';

const messages = [{ role: 'user' as const, content: 'Hello' }];

describe(`the current catalog, snapshots and aliases through the official SDKs (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let anthropic: Anthropic;
  let openai: OpenAI;
  let mb: ModelBridgeClient;
  let keyId: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startTestApp({
      env: { ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-ant-test', OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-test' },
    });
    const owner = await makeUser(app.services, { prepaidMicro: 100_000_000 });
    const created = await makeKey(app.services, owner, { name: 'catalog key' });
    keyId = created.key.id;
    anthropic = new Anthropic({ apiKey: created.secret, baseURL: app.url, maxRetries: 0 });
    openai = new OpenAI({ apiKey: created.secret, baseURL: `${app.url}/v1`, maxRetries: 0 });
    mb = await clientFor(app, await makeUser(app.services, { admin: true }));
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const lastEvent = async () => (await app.t.db('usage_events').where({ key_id: keyId }).orderBy('id', 'desc').first())!;

  async function expectBilledAs(entryId: string, body: unknown) {
    const event = await lastEvent();
    const entry = (await app.services.models.find(entryId))!;
    const usage = fake.expectedUsage(body);
    expect(event).toMatchObject({ model: entryId, outcome: 'ok', input_tokens: usage.inputTokens, output_tokens: usage.outputTokens });
    expect(toMicro(event.cost_micro)).toBe(requestCost(entry, { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens }));
  }

  it('serves the models Claude Code asks for (default, sonnet, haiku) on a fresh database', async () => {
    for (const model of ['claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-5-5']) {
      fake.reset();
      const body = { model, max_tokens: 64, messages };
      const res = await anthropic.messages.create(body);
      expect(res.type, model).toBe('message');
      expect(fake.requests[0]!.body.model).toBe(model);
      await expectBilledAs(model, body);
    }
  });

  it('serves the Codex CLI default model on /v1/chat/completions', async () => {
    const body = { model: 'gpt-6-astra', max_tokens: 64, messages };
    const res = await openai.chat.completions.create(body);
    expect(res.choices).toHaveLength(1);
    expect(fake.requests[0]!.body.model).toBe('gpt-6-astra');
    await expectBilledAs('gpt-6-astra', body);
  });

  it('serves a dated snapshot at its entry’s price and forwards the snapshot name as asked', async () => {
    for (let i = 0; i < 2; i++) {
      // The second time the name is remembered, not looked up.
      fake.reset();
      const body = { model: 'claude-sonnet-4-5-20250929', max_tokens: 64, messages };
      await anthropic.messages.create(body);
      expect(fake.requests[0]!.body.model).toBe('claude-sonnet-4-5-20250929');
      await expectBilledAs('claude-sonnet-4-5', body);
    }
    fake.reset();
    const body = { model: 'gpt-4o-mini-2024-07-18', max_tokens: 64, messages };
    await openai.chat.completions.create(body);
    expect(fake.requests[0]!.body.model).toBe('gpt-4o-mini-2024-07-18');
    await expectBilledAs('gpt-4o-mini', body);
    await expect(anthropic.messages.create({ ...body, model: 'claude-nothing-20250929' })).rejects.toMatchObject({ status: 404 });
  });

  it('resolves an admin’s alias to its entry, sends the entry’s upstream model and lists the alias', async () => {
    const saved = await mb.admin.models.upsert.mutate({
      id: 'house-model', provider: 'anthropic', upstreamModel: 'claude-haiku-5-5', inputAudPerMTok: '0.2', outputAudPerMTok: '1', maxOutputTokens: 8192, aliases: ['house', 'team/default'],
    });
    expect(saved.aliases).toEqual(['house', 'team/default']);
    const body = { model: 'house', max_tokens: 64, messages };
    await anthropic.messages.create(body);
    expect(fake.requests[0]!.body.model).toBe('claude-haiku-5-5');
    await expectBilledAs('house-model', body);

    expect((await mb.models.list.query()).find((m) => m.id === 'house-model')?.aliases).toEqual(['house', 'team/default']);
    const openaiIds: string[] = [];
    for await (const m of openai.models.list()) openaiIds.push(m.id);
    expect(openaiIds).toEqual(expect.arrayContaining(['house-model', 'house', 'team/default', 'claude-opus-5-5', 'gpt-6-astra']));
    const anthropicIds = (await anthropic.models.list()).data.map((m) => m.id);
    expect(anthropicIds).toEqual(expect.arrayContaining(['house-model', 'house', 'claude-opus-5-5']));
    expect(anthropicIds).not.toContain('gpt-6-astra');

    // Omitted aliases stay; an empty list removes them, and the name is refused at once on this instance.
    expect((await mb.admin.models.upsert.mutate({ id: 'house-model', provider: 'anthropic', upstreamModel: 'claude-haiku-5-5', inputAudPerMTok: '0.2', outputAudPerMTok: '1' })).aliases)
      .toEqual(['house', 'team/default']);
    await mb.admin.models.upsert.mutate({ id: 'house-model', provider: 'anthropic', upstreamModel: 'claude-haiku-5-5', inputAudPerMTok: '0.2', outputAudPerMTok: '1', aliases: [] });
    await expect(anthropic.messages.create(body)).rejects.toMatchObject({ status: 404 });
  });

  it('refuses an alias another entry has or is named, and a malformed one', async () => {
    const entry = { provider: 'openai' as const, upstreamModel: 'gpt-6.2-sol', inputAudPerMTok: '3.1', outputAudPerMTok: '15.5' };
    await mb.admin.models.upsert.mutate({ ...entry, id: 'alias-owner', aliases: ['sol'] });
    await expectTrpcError(mb.admin.models.upsert.mutate({ ...entry, id: 'alias-thief', aliases: ['sol'] }), 'CONFLICT');
    await expectTrpcError(mb.admin.models.upsert.mutate({ ...entry, id: 'alias-thief', aliases: ['gpt-4o'] }), 'CONFLICT');
    await expectTrpcError(mb.admin.models.upsert.mutate({ ...entry, id: 'sol' }), 'CONFLICT');
    await expectTrpcError(mb.admin.models.upsert.mutate({ ...entry, id: 'alias-thief', aliases: ['bad name!'] }), 'BAD_REQUEST');
    await expectTrpcError(mb.admin.models.upsert.mutate({ ...entry, id: 'alias-thief', aliases: ['x', 'x'] }), 'BAD_REQUEST');
    expect(await app.services.models.find('alias-thief')).toBeNull();
    expect((await mb.models.list.query()).find((m) => m.id === 'alias-owner')?.aliases).toEqual(['sol']);
  });
});
