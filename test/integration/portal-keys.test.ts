import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { htmx, recordUsage, signIn, type PortalClient } from '../support/portal.js';
import { hashSecret } from '../../src/auth/secret-format.js';

const SECRET = /mbk_[0-9A-Za-z]{30,}/g;

describe('API keys pages', () => {
  let app: TestApp;
  let ann: TestUser;
  let ben: TestUser;
  let client: PortalClient;

  beforeAll(async () => {
    app = await startTestApp();
    ann = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    ben = await makeUser(app.services);
    client = await signIn(app, ann.email, ann.password);
  });
  afterAll(() => app.close());

  it('creates a key and shows its secret once, in the POST response only, uncacheable', async () => {
    const res = await client.post('/keys', { name: '  Cursor laptop  ', limit: '12.50', expires: '2029-06-30', owner: 'personal' });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.location).toBeUndefined();
    const secrets = [...new Set(res.text.match(SECRET))];
    expect(secrets).toHaveLength(1);
    const secret = secrets[0]!;
    expect(res.text).toContain('You will not see it again');
    // Snippets for each tool, pointing at this installation.
    expect(res.text).toContain(`${app.url}/v1/chat/completions`);
    expect(res.text).toContain(`base_url=&quot;${app.url}/v1&quot;, api_key=&quot;${secret}&quot;`);
    expect(res.text).toContain(`export ANTHROPIC_BASE_URL=&quot;${app.url}&quot;`);
    expect(res.text).toContain(`export ANTHROPIC_AUTH_TOKEN=&quot;${secret}&quot;`);
    expect(res.text).toContain('Override Base URL');
    const [key] = await app.services.keys.list({}, ann.actor);
    expect(key).toMatchObject({ name: 'Cursor laptop', spendLimitMicro: 12_500_000, last4: secret.slice(-4) });
    // Through the end of 30 June 2029 in the installation's zone (Sydney, UTC+10 in winter).
    expect(key!.expiresAt?.toISOString()).toBe('2029-06-30T14:00:00.000Z');
    const row = await app.t.db('api_keys').where({ id: key!.id }).first();
    expect(row.key_hash).toBe(hashSecret(secret));
    // Never again: not on the list, not on the detail page, not in any session row.
    for (const path of ['/keys', `/keys/${key!.id}`, '/']) expect((await client.get(path)).text).not.toContain(secret);
    expect((await client.get('/keys')).text).toContain(`mbk_…${secret.slice(-4)}`);
    expect(JSON.stringify(await app.t.db('sessions'))).not.toContain(secret);
    expect(JSON.stringify(await app.t.db('audit_events'))).not.toContain(secret);
    expect(app.logs.join('')).not.toContain(secret);
  });

  it('with htmx, returns the show-once fragment plus the refreshed table, not a whole page', async () => {
    const res = await client.post('/keys', { name: 'htmx key' }, htmx);
    expect(res.status).toBe(201);
    expect(res.text).not.toContain('<html');
    expect(res.text).toContain('id="create-key"');
    expect(res.text).toContain('id="keys-table" hx-swap-oob="true"');
    expect(res.text).toMatch(SECRET);
  });

  it('re-renders the form with the message and the values when input is invalid', async () => {
    for (const [form, message] of [
      [{ name: '   ' }, 'A key name is 1 to 100 characters.'],
      [{ name: 'ok', limit: 'ten dollars' }, 'The spending limit must be an amount in AUD'],
      [{ name: 'ok', expires: '2001-01-01' }, 'The expiry must be in the future.'],
      [{ name: 'ok', expires: '12/31/2099' }, 'Dates look like 31/12/2026 (day first) or 2026-12-31.'],
    ] as const) {
      const res = await client.post('/keys', form);
      expect(res.status).toBe(400);
      expect(res.text).toContain(message);
      expect(res.text).toContain('<html');
      expect(res.text).not.toMatch(SECRET);
    }
    const frag = await client.post('/keys', { name: 'x'.repeat(101), limit: '3' }, htmx);
    expect(frag.status).toBe(400);
    expect(frag.text).not.toContain('<html');
    expect(frag.text).toContain('value="3"');
  });

  it('filters by owner and status, as a fragment for htmx', async () => {
    const team = await makeTeam(app.services, ann, { name: 'Filter team' });
    await makeKey(app.services, ann, { name: 'team-only key', teamId: team.id });
    const revoked = await makeKey(app.services, ann, { name: 'gone key' });
    await app.services.keys.revoke(revoked.key.id, ann.actor);
    const personal = await client.get('/keys?owner=personal');
    expect(personal.text).toContain('Cursor laptop');
    expect(personal.text).not.toContain('team-only key');
    const teamOnly = await client.get(`/keys?owner=team:${team.id}`, htmx);
    expect(teamOnly.text).not.toContain('<html');
    expect(teamOnly.text).toContain('team-only key');
    expect(teamOnly.text).not.toContain('Cursor laptop');
    expect(teamOnly.headers.vary).toMatch(/HX-Request/i);
    const onlyRevoked = await client.get('/keys?status=revoked');
    expect(onlyRevoked.text).toContain('gone key');
    expect(onlyRevoked.text).not.toContain('Cursor laptop');
  });

  it('edits a limit inline: htmx gets the row back; without JavaScript a page and a 303', async () => {
    const { key } = await makeKey(app.services, ann, { name: 'limit me', spendLimitMicro: 1_000_000 });
    await recordUsage(app.services, key.id, 600_000);
    const edit = await client.get(`/keys/${key.id}/limit`, htmx);
    expect(edit.text).toMatch(/^\s*<tr id="key-/);
    expect(edit.text).toContain('value="1.00"');
    // Lowering the limit to the spend stops the key at once.
    const lowered = await client.post(`/keys/${key.id}/limit`, { limit: '0.60' }, htmx);
    expect(lowered.status).toBe(200);
    expect(lowered.text).toMatch(/^\s*<tr id="key-/);
    expect(lowered.text).toContain('Limit reached');
    expect(lowered.text).toContain('hx-swap-oob');
    // Raising it above the spend restores it.
    const raised = await client.post(`/keys/${key.id}/limit`, { limit: '5', back: '/keys' });
    expect(raised.status).toBe(303);
    expect(raised.headers.location).toBe('/keys?done=limit');
    expect((await app.services.keys.get(key.id, ann.actor)).status).toBe('active');
    const bad = await client.post(`/keys/${key.id}/limit`, { limit: '-1' }, htmx);
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('class="editing"');
    expect(bad.text).toContain('must be an amount in AUD');
    const page = await client.get(`/keys/${key.id}/limit`);
    expect(page.text).toContain('<html');
    // Removing the limit.
    await client.post(`/keys/${key.id}/limit`, { limit: '' });
    expect((await app.services.keys.get(key.id, ann.actor)).spendLimitMicro).toBeNull();
  });

  it('revokes after confirmation: a confirmation page without JavaScript, the row in place with htmx', async () => {
    const a = await makeKey(app.services, ann, { name: 'revoke via page' });
    const confirm = await client.get(`/keys/${a.key.id}/revoke`);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('Revoke this key?');
    expect((await app.services.keys.get(a.key.id, ann.actor)).status).toBe('active');
    const done = await client.post(`/keys/${a.key.id}/revoke`, { back: `/keys/${a.key.id}` });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe(`/keys/${a.key.id}?done=revoked`);
    expect((await app.services.keys.get(a.key.id, ann.actor)).status).toBe('revoked');

    const b = await makeKey(app.services, ann, { name: 'revoke via htmx' });
    const row = await client.post(`/keys/${b.key.id}/revoke`, {}, htmx);
    expect(row.text).toMatch(/^\s*<tr id="key-/);
    expect(row.text).toContain('Revoked');
    expect(row.text).not.toContain('>Revoke<');
  });

  it('rotates with a grace period and shows the successor secret once', async () => {
    const old = await makeKey(app.services, ann, { name: 'rotate me', spendLimitMicro: 3_000_000 });
    const form = await client.get(`/keys/${old.key.id}/rotate`);
    expect(form.text).toContain('Keep the old key working for 1 hour');
    const res = await client.post(`/keys/${old.key.id}/rotate`, { grace: '3600' });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const secret = [...new Set(res.text.match(SECRET))];
    expect(secret).toHaveLength(1);
    expect(secret[0]).not.toBe(old.secret);
    expect(res.text).toContain('keeps working until');
    const previous = await app.services.keys.get(old.key.id, ann.actor);
    expect(previous.rotatedToId).not.toBeNull();
    expect(previous.status).toBe('active');
    const successor = await app.services.keys.get(previous.rotatedToId!, ann.actor);
    expect(successor).toMatchObject({ name: 'rotate me', spendLimitMicro: 3_000_000 });
    const again = await client.post(`/keys/${old.key.id}/rotate`, { grace: '0' });
    expect(again.status).toBe(409);
    expect(again.text).toContain('already rotated');
    expect((await client.post(`/keys/${successor.id}/rotate`, { grace: 'soon' })).status).toBe(400);
  });

  it('shows key detail with its chart, per-model breakdown and recent requests', async () => {
    const { key } = await makeKey(app.services, ann, { name: 'busy key' });
    await recordUsage(app.services, key.id, 1_234_567, { model: 'gpt-4o', inputTokens: 1200, outputTokens: 340 });
    await recordUsage(app.services, key.id, 5, { model: 'gpt-4o-mini' });
    const res = await client.get(`/keys/${key.id}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('<svg class="chart"');
    expect(res.text).toContain('A$1.23'); // readable total
    expect(res.text).toContain('A$1.234567'); // exact per request
    expect(res.text).toContain('A$0.000005');
    expect(res.text).toMatch(/gpt-4o<\/td>/);
    expect(res.text).toContain('1,200');
    expect(res.text).toContain('no spending limit</strong>');
  });

  it("never shows another user's key: detail, limit, revoke and rotate are all 404", async () => {
    const bens = await makeKey(app.services, ben, { name: "ben's secret project" });
    for (const path of [`/keys/${bens.key.id}`, `/keys/${bens.key.id}/limit`, `/keys/${bens.key.id}/revoke`, `/keys/${bens.key.id}/rotate`, `/keys/${bens.key.id}/row`]) {
      const res = await client.get(path);
      expect(res.status, path).toBe(404);
      expect(res.text, path).not.toContain("ben's secret project");
    }
    for (const path of [`/keys/${bens.key.id}/limit`, `/keys/${bens.key.id}/revoke`, `/keys/${bens.key.id}/rotate`]) {
      expect((await client.post(path, { limit: '1', grace: '0' })).status, path).toBe(404);
    }
    expect((await client.get('/keys')).text).not.toContain("ben's secret project");
    expect((await app.services.keys.get(bens.key.id, ben.actor)).status).toBe('active');
    const frag = await client.post(`/keys/${bens.key.id}/revoke`, {}, htmx);
    expect(frag.status).toBe(404);
    expect(frag.headers['hx-retarget']).toBe('#flash');
  });

  it('offers team ownership only where the role may create keys, and the domain refuses the rest', async () => {
    const owner = await makeUser(app.services);
    const team = await makeTeam(app.services, owner, { name: 'Viewers only', members: [[ann, 'viewer']] });
    const page = await client.get('/keys');
    expect(page.text).not.toContain(`<option value="${team.id}"`);
    const res = await client.post('/keys', { name: 'sneaky', owner: team.id });
    expect(res.status).toBe(403);
    expect(await app.services.keys.list({ teamId: team.id }, owner.actor)).toHaveLength(0);
  });
});

describe('dashboard', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.close());

  it('shows balances by bucket, period spend, the daily chart, keys needing attention and team balances', async () => {
    const user = await makeUser(app.services, { plan: 'Pro', prepaidMicro: 7_500_000 });
    const team = await makeTeam(app.services, user, { name: 'Data science', balanceMicro: 42_000_000 });
    const near = await makeKey(app.services, user, { name: 'nearly spent', spendLimitMicro: 1_000_000 });
    await recordUsage(app.services, near.key.id, 850_000);
    await makeKey(app.services, user, { name: 'ending soon', expiresAt: new Date(Date.now() + 2 * 86_400_000) });
    await makeKey(app.services, user, { name: 'calm key', spendLimitMicro: 50_000_000, expiresAt: new Date(Date.now() + 90 * 86_400_000) });
    const client = await signIn(app, user.email, user.password);
    const res = await client.get('/');
    expect(res.status).toBe(200);
    const balance = await app.services.balances.personal(user.user.id);
    expect(res.text).toContain('Pro plan');
    expect(res.text).toContain('A$7.50'); // prepaid
    expect(res.text).toContain('A$0.85'); // spend this period and included used
    expect(res.text).toContain(`left of A$${(balance.includedMicro / 1e6).toFixed(2)}`);
    expect(res.text).toContain('<svg class="chart"');
    expect(res.text).toContain('nearly spent');
    expect(res.text).toContain('ending soon');
    expect(res.text).not.toContain('calm key');
    expect(res.text).toContain('Data science');
    expect(res.text).toContain('A$42.00');
    expect(team.id).toBeTruthy();
  });
});
