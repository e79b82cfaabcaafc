import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/proxy/body.js';
import { dialect } from '../support/db.js';
import { adminActor, makeKey, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';
import { proxyFixture } from '../support/proxy-fixture.js';
import { bearer, rawCall, tokenFor } from '../support/trpc.js';

/** Bad input answered with a clear 4xx in the endpoint's format, never a 5xx, never echoed whole (#14, 9–14). */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe(`bad input gets a 4xx, never a 5xx (${dialect})`, () => {
  const f = proxyFixture();
  let admin: TestUser;
  let user: TestUser;
  let adminToken: string;
  let userToken: string;
  let browser: PortalClient;

  beforeAll(async () => {
    admin = await makeUser(f.app.services, { admin: true });
    user = await makeUser(f.app.services);
    adminToken = await tokenFor(f.app, admin);
    userToken = await tokenFor(f.app, user);
    browser = await signIn(f.app, user.email, user.password);
  });

  const v1 = (path: string, init: RequestInit & { anthropic?: boolean } = {}) =>
    fetch(`${f.app.url}/v1${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${f.secret}`, 'content-type': 'application/json',
        ...(init.anthropic && { 'anthropic-version': '2023-06-01' }),
        ...(init.headers as Record<string, string>),
      },
    });

  describe('maximum expiry (9)', () => {
    for (const path of ['keys.create', 'tokens.create'] as const) {
      it(`${path}: an expiry past the maximum (year 10000 in UTC) is a 400 that names the maximum`, async () => {
        const res = await rawCall(f.app, 'mutation', path, { name: 'far future', expiresAt: '9999-12-31T23:59:59-14:00' }, bearer(userToken));
        expect(res.status).toBe(400);
        expect(res.body.error.message).toMatch(/at most 5 years ahead/);
        const soon = await rawCall(f.app, 'mutation', path, { name: 'four years', expiresAt: new Date(Date.now() + 4 * 365 * 86_400_000).toISOString() }, bearer(userToken));
        expect(soon.status).toBe(200);
      });
    }
  });

  it('GET /v1/models/<bad percent-encoding> is a 400 in the OpenAI and the Anthropic format (10)', async () => {
    const openai = await v1('/models/%E0%A4%A');
    expect(openai.status).toBe(400);
    expect((await openai.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request' });
    const anthropic = await v1('/models/%E0%A4%A', { anthropic: true });
    expect(anthropic.status).toBe(400);
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });

  describe('JSON nested deeper than the bound is a 400 at parse (11)', () => {
    const deep = nested(10_000);
    const cases: Array<[string, string, string, boolean]> = [
      ['chat', '/chat/completions', `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"x":${deep}}`, false],
      ['chat, stream:true', '/chat/completions', `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"x":${deep}}`, false],
      ['chat with an Anthropic model (translated)', '/chat/completions', `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"tools":${deep}}`, false],
      ['a dated snapshot alias', '/messages', `{"model":"claude-haiku-4-5-20251001","max_tokens":8,"messages":[{"role":"user","content":${deep}}]}`, true],
      ['messages, stream:true', '/messages', `{"model":"claude-haiku-4-5","stream":true,"max_tokens":8,"messages":[{"role":"user","content":${deep}}]}`, true],
      ['count_tokens', '/messages/count_tokens', `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":${deep}}]}`, true],
    ];
    for (const [name, path, body, anthropic] of cases) {
      it(name, async () => {
        const res = await v1(path, { method: 'POST', body, anthropic });
        expect(res.status).toBe(400);
        expect(res.headers.get('x-should-retry')).toBe('false');
        const json = await res.json();
        expect(json.error.message).toMatch(new RegExp(`nested more than ${MAX_JSON_DEPTH} levels`));
        expect(f.fake.requests.length).toBe(0);
      });
    }

    it('still accepts nesting up to the bound, and brackets inside strings do not count', async () => {
      const body = { model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: '['.repeat(5000) }], metadata: undefined, x: JSON.parse(nested(MAX_JSON_DEPTH - 2)) };
      const res = await v1('/chat/completions', { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(200);
    });
  });

  it('admin.credit that would take a balance past the maximum is a 400 naming it, and the balance is unchanged (12)', async () => {
    const target = await makeUser(f.app.services);
    const credit = () => rawCall(f.app, 'mutation', 'admin.credit', { userId: target.user.id, amountAud: '1000000000' }, bearer(adminToken));
    for (let i = 0; i < 8; i++) expect((await credit()).status).toBe(200);
    const refused = await credit();
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/maximum of A\$8,000,000,000\.00/);
    const team = await f.app.services.teams.create('Rich', target.actor);
    for (let i = 0; i < 8; i++) await f.app.services.balances.credit({ teamId: team.id }, 1_000_000_000_000_000, null, adminActor);
    expect((await rawCall(f.app, 'mutation', 'admin.credit', { teamId: team.id, amountAud: '1' }, bearer(adminToken))).status).toBe(400);
    const me = await rawCall(f.app, 'query', 'me.get', undefined, bearer(await tokenFor(f.app, target)));
    expect(me.status).toBe(200);
    expect(me.body.result.data.balance.prepaidAud).toBe('8000000000');
  });

  describe('portal dates, back parameter and names (13)', () => {
    it('refuses an expiry that is not a calendar date instead of rolling it into another year', async () => {
      for (const expires of ['2026-99-99', '2027-02-30', '2027-13-01']) {
        const res = await browser.post('/keys', { name: 'bad date', expires });
        expect(res.status, expires).toBe(400);
        expect(res.text).toContain('Dates look like 31/12/2026 (day first) or 2026-12-31.');
      }
      expect((await f.app.services.keys.list({}, user.actor)).some((k) => k.name === 'bad date')).toBe(false);
    });

    it('redirects to /keys?done=… when `back` is refused, whatever it contains', async () => {
      const { key } = await makeKey(f.app.services, user);
      for (const back of ['https://evil.example/?x=1', '//evil.example/a?b', '/keys list?x']) {
        const res = await browser.post(`/keys/${key.id}/limit`, { limit: '5', back });
        expect(res.status).toBe(303);
        expect(res.headers.location, back).toBe('/keys?done=limit');
      }
      const res = await browser.post(`/keys/${key.id}/limit`, { limit: '6', back: '/keys?status=active' });
      expect(res.headers.location).toBe('/keys?status=active&done=limit');
    });

    it('refuses names that are invisible, contain NUL or controls, or carry a text-direction override', async () => {
      const bad = ['\u200b\u200b', '\u0000', 'a\u0000b', '\u2060\ufeff', 'invoice\u202etxt.exe', 'x\u2066y', 'tab\there'];
      for (const name of bad) {
        const res = await browser.post('/keys', { name });
        expect(res.status, JSON.stringify(name)).toBe(400);
        const team = await rawCall(f.app, 'mutation', 'teams.create', { name }, bearer(userToken));
        expect(team.status, JSON.stringify(name)).toBe(400);
        const token = await rawCall(f.app, 'mutation', 'tokens.create', { name }, bearer(userToken));
        expect(token.status, JSON.stringify(name)).toBe(400);
      }
      // Names in any script, with emoji and joiners inside visible text, are fine.
      for (const name of ['Ünïcödé ключ 鍵', 'family 👨‍👩‍👧', 'עברית key']) expect((await browser.post('/keys', { name })).status).toBe(201);
    });
  });

  describe('error bodies cap what they echo and never echo header values (14)', () => {
    const long = 'm'.repeat(5000);

    it('model not found and unknown URL quote at most 100 characters of the input', async () => {
      const chat = await v1('/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm'.repeat(190), messages: [{ role: 'user', content: 'x' }] }) });
      expect(chat.status).toBe(404);
      const chatMessage: string = (await chat.json()).error.message;
      expect(chatMessage.length).toBeLessThan(300);
      const model = await v1(`/models/${long}`);
      expect(model.status).toBe(404);
      expect(((await model.json()).error.message as string).length).toBeLessThan(300);
      const url = await v1(`/${long}`);
      expect(url.status).toBe(404);
      expect(((await url.json()).error.message as string).length).toBeLessThan(300);
      const misdirected = await fetch(`${f.app.url}/chat/completions/${long}`, { method: 'POST' });
      expect(misdirected.status).toBe(404);
      expect((await misdirected.text()).includes('m'.repeat(101))).toBe(false);
    });

    it('unrecognised keys are listed a few at a time, each capped', async () => {
      const input: Record<string, unknown> = { name: 'k' };
      for (let i = 0; i < 50; i++) input[`${'z'.repeat(200)}${i}`] = 1;
      const res = await rawCall(f.app, 'mutation', 'keys.create', input, bearer(userToken));
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/Unrecognized key\(s\) in object: .* and 47 more/);
      expect(res.text.length).toBeLessThan(1500);
    });

    it('tRPC caps an unknown procedure path it quotes back', async () => {
      const res = await rawCall(f.app, 'mutation', 'p'.repeat(5000), {}, bearer(userToken));
      expect(res.status).toBe(404);
      expect(res.text.length).toBeLessThan(1000);
    });

    it('does not quote the Content-Encoding header back', async () => {
      const secretish = 'mbk_pretend-this-is-a-secret-header-value';
      const res = await v1('/chat/completions', { method: 'POST', body: '{}', headers: { 'content-encoding': secretish } });
      expect(res.status).toBe(415);
      expect(await res.text()).not.toContain(secretish);
    });
  });
});
