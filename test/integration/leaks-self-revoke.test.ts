import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/auth/secret-format.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeKey, makeUser, type TestUser } from '../support/factories.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };

/** Two app instances on one database, as behind a load balancer: each has its own identity cache. */
describe(`POST /v1/key/revoke: a key revokes itself (${dialect})`, () => {
  let fake: FakeUpstream;
  let t: TestDb;
  let a: TestApp;
  let b: TestApp;
  let owner: TestUser;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    t = await createTestDb();
    const env = { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-o', ANTHROPIC_BASE_URL: fake.anthropicBaseUrl, ANTHROPIC_API_KEY: 'sk-a' };
    a = await startTestApp({ testDb: t, env });
    b = await startTestApp({ testDb: { ...t, db: t.another() }, env });
    owner = await makeUser(a.services, { prepaidMicro: 10_000_000 });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await t?.destroy();
    await fake?.close();
  });

  async function call(app: TestApp, method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const r = await fetch(`${app.url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, text, json: JSON.parse(text) as Record<string, any> };
  }

  it('revokes the key; the other instance refuses it on the very next request', async () => {
    const { key, secret } = await makeKey(a.services, owner);
    const auth = { authorization: `Bearer ${secret}` };
    // Instance A has served the key, so it knows who it is (its identity cache).
    expect((await call(a, 'POST', '/v1/chat/completions', auth, chat)).status).toBe(200);
    expect((await call(a, 'POST', '/v1/chat/completions', auth, chat)).status).toBe(200);

    const revoked = await call(b, 'POST', '/v1/key/revoke', auth);
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({ object: 'api_key', id: key.id, status: 'revoked', revoked: true });
    expect(revoked.text).not.toContain(secret);

    const next = await call(a, 'POST', '/v1/chat/completions', auth, chat);
    expect(next.status).toBe(401);
    expect(next.json.error).toMatchObject({ code: 'key_revoked' });
    expect((await call(a, 'GET', '/v1/key', auth)).status).toBe(401);
    expect((await a.services.keys.get(key.id, owner.actor)).status).toBe('revoked');
  });

  it('is audited as self-revoked, naming no user, and a second call changes nothing', async () => {
    const { key, secret } = await makeKey(a.services, owner);
    const first = await call(a, 'POST', '/v1/key/revoke', { 'x-api-key': secret, 'user-agent': 'incident-script' });
    const again = await call(b, 'POST', '/v1/key/revoke', { 'x-api-key': secret });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.json.revoked_at).toBe(first.json.revoked_at);
    const audit = await a.services.audit.list(t.db, { targetType: 'key', targetId: key.id });
    const revocations = audit.filter((e) => e.action === 'key.revoke');
    expect(revocations).toHaveLength(1);
    expect(revocations[0]).toMatchObject({ actorId: null, actorKind: 'key', details: { selfRevoked: true }, userAgent: 'incident-script' });
  });

  it('answers in the Anthropic format when the client speaks it', async () => {
    const { key, secret } = await makeKey(a.services, owner);
    const r = await call(a, 'POST', '/v1/key/revoke', { 'x-api-key': secret, 'anthropic-version': '2023-06-01' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ type: 'api_key', id: key.id, status: 'revoked', revoked_at: expect.any(String) });
  });

  it('refuses a missing, unknown or malformed key with 401 in the endpoint format, changing nothing', async () => {
    const unknown = generateSecret('mbk_');
    for (const headers of [{}, { authorization: `Bearer ${unknown}` }, { authorization: `Bearer ${unknown.slice(0, -1)}x` }, { authorization: 'Bearer mbm_notakey' }] as Array<Record<string, string>>) {
      const r = await call(a, 'POST', '/v1/key/revoke', headers);
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
      expect(r.text).not.toContain(unknown);
    }
    const anthropic = await call(a, 'POST', '/v1/key/revoke', { 'x-api-key': unknown, 'anthropic-version': '2023-06-01' });
    expect(anthropic.json).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('a management token cannot revoke itself here (it never works on /v1)', async () => {
    const { secret } = await a.services.tokens.create({ name: 'automation' }, owner.actor);
    expect((await call(a, 'POST', '/v1/key/revoke', { authorization: `Bearer ${secret}` })).status).toBe(401);
    expect(await a.services.tokens.authenticate(secret)).not.toBeNull();
  });
});
