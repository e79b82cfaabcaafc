import { request as httpRequest } from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/auth/secret-format.js';
import { ManualClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { adminActor, makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };
const message = { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user' as const, content: 'hello' }] };

describe(`refusals, each in its endpoint's format (${dialect})`, () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let clock: ManualClock;
  let owner: TestUser;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    clock = new ManualClock(new Date());
    app = await startTestApp({
      clock,
      env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-a' },
    });
    owner = await makeUser(app.services, { prepaidMicro: 10_000_000 });
  });
  beforeEach(() => fake.reset());
  afterEach(async () => expectMeteringInvariants(app.t.db));
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const openaiWith = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${app.url}/v1`, maxRetries: 0 });
  const anthropicWith = (apiKey: string) => new Anthropic({ apiKey, baseURL: app.url, maxRetries: 0 });

  async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
    const r = await fetch(`${app.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, json: JSON.parse(text) };
  }

  describe('authentication', () => {
    it('refuses a missing, malformed or unknown key with 401 invalid_api_key, never echoing it', async () => {
      const unknown = generateSecret('mbk_');
      const broken = unknown.slice(0, -1) + (unknown.endsWith('A') ? 'B' : 'A');
      for (const headers of [{}, { authorization: `Bearer ${broken}` }, { authorization: `Bearer ${unknown}` }, { 'x-api-key': unknown },
        { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: `Bearer ${unknown} extra` }] as Array<Record<string, string>>) {
        const r = await post('/v1/chat/completions', chat, headers);
        expect(r.status).toBe(401);
        expect(r.json).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', code: 'invalid_api_key', param: null } });
        expect(r.headers.get('x-should-retry')).toBe('false');
        expect(r.text).not.toContain(unknown.slice(4, 20));
      }
      await expect(openaiWith(unknown).chat.completions.create(chat)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const err = await anthropicWith(unknown).messages.create(message).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
      expect((err as InstanceType<typeof Anthropic.AuthenticationError>).error).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.any(String) } });
      expect(fake.requests).toHaveLength(0);
    });

    it('never accepts a management token or a session cookie on /v1', async () => {
      const { secret: token } = await app.services.tokens.create({ name: 'automation' }, owner.actor);
      expect((await post('/v1/chat/completions', chat, { authorization: `Bearer ${token}` })).status).toBe(401);
      expect((await post('/v1/messages', message, { 'x-api-key': token })).status).toBe(401);
      const r = await fetch(`${app.url}/v1/key`, { headers: { cookie: 'auth_session=whatever; session=abc' } });
      expect(r.status).toBe(401);
      expect(fake.requests).toHaveLength(0);
    });

    it('refuses a revoked key on the very next request', async () => {
      const { key, secret } = await makeKey(app.services, owner);
      const client = openaiWith(secret);
      await expect(client.chat.completions.create(chat)).resolves.toBeTruthy();
      await app.services.keys.revoke(key.id, owner.actor);
      const err = await client.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(err).toMatchObject({ status: 401, code: 'key_revoked' });
      await expect(anthropicWith(secret).messages.create(message)).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
      expect((await fetch(`${app.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401);
      // Once admission has refused it, the key is looked up again on each request and refused before any lock:
      // a client that keeps trying costs no metering transaction.
      const metered = () => app.services.metering.transactions.oneRoundTrip + app.services.metering.transactions.readThenWrite;
      const before = metered();
      for (let i = 0; i < 3; i++) await expect(client.chat.completions.create(chat)).rejects.toMatchObject({ status: 401, code: 'key_revoked' });
      expect(metered()).toBe(before);
    });

    it('refuses a key whose owner was disabled after the key was used', async () => {
      const holder = await makeUser(app.services, { prepaidMicro: 1_000_000 });
      const { secret } = await makeKey(app.services, holder);
      const client = openaiWith(secret);
      await expect(client.chat.completions.create(chat)).resolves.toBeTruthy();
      await app.services.users.setDisabled(holder.user.id, true, adminActor);
      const err = await client.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 401, code: 'invalid_api_key' });
      expect(fake.requests).toHaveLength(1);
    });

    it('refuses a key at its expiry instant, before any job has run', async () => {
      const { secret } = await makeKey(app.services, owner, { expiresAt: new Date(clock.now().getTime() + 3_600_000) });
      const client = openaiWith(secret);
      await expect(client.chat.completions.create(chat)).resolves.toBeTruthy();
      clock.advance(3_600_000);
      const err = await client.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(err).toMatchObject({ status: 401, code: 'key_expired' });
      expect(fake.requests).toHaveLength(1);
    });
  });

  describe('money', () => {
    it('refuses with 402 insufficient_balance when the payer cannot pay', async () => {
      await app.services.plans.create({ name: 'Nothing included', includedMicro: 0, overageAllowed: false, overageCapMicro: null }, adminActor);
      const broke = await makeUser(app.services, { plan: 'Nothing included' as 'Free' });
      const { secret } = await makeKey(app.services, broke);
      const err = await openaiWith(secret).chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err).toMatchObject({ status: 402, code: 'insufficient_balance', type: 'insufficient_quota' });

      const team = await makeTeam(app.services, owner);
      const { secret: teamSecret } = await makeKey(app.services, owner, { teamId: team.id });
      const aerr = await anthropicWith(teamSecret).messages.create(message).catch((e: unknown) => e);
      expect(aerr).toMatchObject({ status: 402, error: { type: 'error', error: { type: 'billing_error' } } });
      const r = await post('/v1/messages', message, { 'x-api-key': teamSecret });
      expect(r.headers.get('x-should-retry')).toBe('false');
      expect(fake.requests).toHaveLength(0);
    });

    it('answers 429 spend_limit_reached once the limit is reached, and serves again when it is raised', async () => {
      const { key, secret } = await makeKey(app.services, owner, { spendLimitMicro: 5 });
      const client = openaiWith(secret);
      // The first request is admitted (the limit has headroom) and charged in full, crossing the limit.
      await client.chat.completions.create(chat);
      const after = await app.t.db('api_keys').where({ id: key.id }).first();
      expect(after.status).toBe('limit_reached');
      expect(toMicro(after.spend_micro)).toBeGreaterThanOrEqual(5);

      const err = await client.chat.completions.create(chat).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(err).toMatchObject({ status: 429, code: 'spend_limit_reached', type: 'insufficient_quota' });
      expect((err as Error).message).toMatch(/spent .* of 0\.000005 AUD/);
      expect((err as Error).message).toMatch(/Raise or remove the limit/);
      const r = await post('/v1/chat/completions', chat, { authorization: `Bearer ${secret}` });
      expect(r.headers.get('x-should-retry')).toBe('false');
      const aerr = await anthropicWith(secret).messages.create(message).catch((e: unknown) => e);
      expect(aerr).toBeInstanceOf(Anthropic.RateLimitError);

      // GET /v1/key still answers, so the tool can tell the user why.
      const status = await (await fetch(`${app.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } })).json();
      expect(status).toMatchObject({ status: 'limit_reached', limit_aud: '0.000005', remaining_aud: '0', id: key.id });
      expect(JSON.stringify(status)).not.toContain(secret);

      await app.services.keys.update(key.id, { spendLimitMicro: 1_000_000 }, owner.actor);
      await expect(client.chat.completions.create(chat)).resolves.toBeTruthy();
      expect(fake.requests).toHaveLength(2);
    });

    it('answers 429 spend_limit_pending with Retry-After while another request holds the rest of the limit', async () => {
      const { secret } = await makeKey(app.services, owner, { spendLimitMicro: 1_000 });
      fake.setMode('slow');
      // No max_tokens: the estimate uses the model's output cap, far above the limit, so this hold takes it all.
      const big = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'long answer please' }] };
      const first = post('/v1/chat/completions', big, { authorization: `Bearer ${secret}` });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = await post('/v1/chat/completions', chat, { authorization: `Bearer ${secret}` });
      expect(second.status).toBe(429);
      expect(second.json.error).toMatchObject({ code: 'spend_limit_pending', type: 'rate_limit_error' });
      expect(second.headers.get('retry-after')).toBe('2');
      expect(second.headers.get('x-should-retry')).toBe('true');
      expect((await first).status).toBe(200);
    });
  });

  describe('requests', () => {
    let secret: string;
    beforeAll(async () => {
      ({ secret } = await makeKey(app.services, owner, { name: 'request checks' }));
    });

    it('refuses a model on an endpoint that cannot be translated to its format, naming the right one', async () => {
      // Chat and Messages are translated both ways (proxy-translate-*.test.ts); embeddings have no Anthropic form.
      const r = await post('/v1/embeddings', { model: 'claude-haiku-4-5', input: 'x' }, { authorization: `Bearer ${secret}` });
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'invalid_request', type: 'invalid_request_error' });
      expect(r.json.error.message).toContain('POST /v1/messages');
      expect(fake.requests).toHaveLength(0);
    });

    it('answers 404 model_not_found for unknown and disabled models', async () => {
      const err = await openaiWith(secret).chat.completions.create({ ...chat, model: 'gpt-9-imaginary' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err).toMatchObject({ code: 'model_not_found' });
      const admin = await makeUser(app.services, { admin: true });
      const haiku = (await app.services.models.find('claude-haiku-4-5'))!;
      await app.services.models.upsert({ ...haiku, id: 'claude-off', enabled: false }, admin.actor);
      const aerr = await anthropicWith(secret).messages.create({ ...message, model: 'claude-off' }).catch((e: unknown) => e);
      expect(aerr).toBeInstanceOf(Anthropic.NotFoundError);
      expect(aerr).toMatchObject({ error: { error: { type: 'not_found_error' } } });
      expect(fake.requests).toHaveLength(0);
    });

    it('applies a catalog change made elsewhere (another instance) to the very next request', async () => {
      const admin = await makeUser(app.services, { admin: true });
      const mini = (await app.services.models.find('gpt-4o-mini'))!;
      await app.services.models.upsert({ ...mini, id: 'gpt-repriced' }, admin.actor);
      const { key, secret } = await makeKey(app.services, owner);
      const client = openaiWith(secret);
      await client.chat.completions.create({ ...chat, model: 'gpt-repriced' });
      const costs = async () => (await app.t.db('usage_events').where({ key_id: key.id }).orderBy('created_at')).map((e) => toMicro(e.cost_micro));
      // Straight in the database, as another instance's admin page would: this instance remembers the old entry.
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ input_micro_per_mtok: mini.inputMicroPerMTok * 1_000, output_micro_per_mtok: mini.outputMicroPerMTok * 1_000 });
      await client.chat.completions.create({ ...chat, model: 'gpt-repriced' });
      const [before, after] = await costs();
      expect(after).toBeGreaterThan(before! * 500);
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ enabled: false });
      const err = await client.chat.completions.create({ ...chat, model: 'gpt-repriced' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 404, code: 'model_not_found' });
      expect(fake.requests).toHaveLength(2);
      // A refusal is never judged from memory: enabled again elsewhere, it serves the very next request.
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ enabled: true });
      await expect(client.chat.completions.create({ ...chat, model: 'gpt-repriced' })).resolves.toBeTruthy();
      // Moved to the other provider elsewhere: the very next chat request goes there, translated; an embeddings
      // request, which cannot be, is refused with 400 naming the right endpoint…
      await client.chat.completions.create({ ...chat, model: 'gpt-repriced' });
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ provider: 'anthropic' });
      await expect(client.chat.completions.create({ ...chat, model: 'gpt-repriced' })).resolves.toMatchObject({ object: 'chat.completion' });
      expect(fake.requests.at(-1)!.path).toBe('/v1/messages');
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ provider: 'openai' });
      await client.embeddings.create({ model: 'gpt-repriced', input: 'x' });
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ provider: 'anthropic' });
      const moved = await client.embeddings.create({ model: 'gpt-repriced', input: 'x' }).catch((e: unknown) => e);
      expect(moved).toMatchObject({ status: 400 });
      expect(String((moved as Error).message)).toContain('/v1/messages');
      // …and moved back: the entry remembered from that refusal is not what refuses the next request.
      await app.t.db('models').where({ id: 'gpt-repriced' }).update({ provider: 'openai' });
      await expect(client.chat.completions.create({ ...chat, model: 'gpt-repriced' })).resolves.toBeTruthy();
      expect(fake.requests).toHaveLength(7);
    });

    it('answers invalid bodies with 400 invalid_request and huge ones with 413, never 5xx', async () => {
      const auth = { authorization: `Bearer ${secret}` };
      const cases: Array<[string, unknown]> = [
        ['/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": ['],
        ['/v1/chat/completions', '[1,2,3]'],
        ['/v1/chat/completions', 'null'],
        ['/v1/chat/completions', { model: 'gpt-4o-mini' }],
        ['/v1/chat/completions', { model: 'gpt-4o-mini', messages: [] }],
        ['/v1/chat/completions', { model: 42, messages: [{ role: 'user', content: 'x' }] }],
        ['/v1/chat/completions', { ...chat, max_tokens: -1 }],
        ['/v1/chat/completions', { ...chat, max_tokens: 1.5 }],
        ['/v1/chat/completions', { ...chat, stream: 'yes' }],
        ['/v1/chat/completions', { ...chat, n: 1000 }],
        ['/v1/embeddings', { model: 'text-embedding-3-small' }],
        ['/v1/messages', { model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'x' }] }],
        ['/v1/messages', ''],
      ];
      for (const [path, body] of cases) {
        const r = await post(path, body, path === '/v1/messages' ? { 'x-api-key': secret } : auth);
        expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
        const error = path === '/v1/messages' ? r.json.error : r.json.error;
        expect(error.type).toBe('invalid_request_error');
      }
      // Above the endpoint's limit (proxy-bodies.test.ts has the limits): declared, so refused before reading it.
      const huge = await new Promise<{ status: number; json: any }>((resolve, reject) => {
        const req = httpRequest(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-length': 100 * 1024 * 1024 } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          });
        });
        req.on('error', reject);
        req.flushHeaders();
      });
      expect(huge.status).toBe(413);
      expect(huge.json.error.code).toBe('request_too_large');
      expect(fake.requests).toHaveLength(0);
    });

    it('answers arbitrary bodies with 4xx, never 5xx (property)', async () => {
      const auth = { authorization: `Bearer ${secret}` };
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.json(), fc.string(), fc.object().map((o) => JSON.stringify({ ...o, model: 'gpt-4o-mini' }))), async (body) => {
          const r = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
          await r.arrayBuffer();
          return r.status < 500;
        }),
        { numRuns: 60 },
      );
    });

    it('answers unknown /v1 URLs with 404 in the OpenAI format', async () => {
      const r = await fetch(`${app.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: '{}' });
      expect(r.status).toBe(404);
      expect((await r.json()).error.code).toBe('unknown_url');
      expect((await fetch(`${app.url}/v1/chat/completions`)).status).toBe(404);
    });
  });
});
