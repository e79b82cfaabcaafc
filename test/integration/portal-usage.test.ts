import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { htmx, recordUsage, signIn, type PortalClient } from '../support/portal.js';
import { ManualClock } from '../../src/domain/clock.js';

describe('usage log and CSV export', () => {
  let app: TestApp;
  let clock: ManualClock;
  let gail: TestUser;
  let client: PortalClient;
  let keyA: string;
  let keyB: string;
  let teamKey: string;
  let teamId: string;

  beforeAll(async () => {
    clock = new ManualClock('2026-03-10T01:00:00.000Z'); // 12:00 in Sydney
    app = await startTestApp({ clock });
    gail = await makeUser(app.services, { prepaidMicro: 100_000_000 });
    const team = await makeTeam(app.services, gail, { name: 'Ops', balanceMicro: 50_000_000 });
    teamId = team.id;
    keyA = (await makeKey(app.services, gail, { name: 'alpha' })).key.id;
    keyB = (await makeKey(app.services, gail, { name: '=cmd|calc' })).key.id;
    teamKey = (await makeKey(app.services, gail, { name: 'ops-key', teamId })).key.id;
    await recordUsage(app.services, keyA, 1_000_001, { model: 'gpt-4o', cachedInputTokens: 9_000, cacheWrite5mTokens: 300, cacheWrite1hTokens: 40, reasoningTokens: 7 });
    clock.set('2026-03-11T01:00:00.000Z');
    await recordUsage(app.services, keyB, 20, { model: 'gpt-4o-mini' });
    clock.set('2026-03-12T01:00:00.000Z');
    await recordUsage(app.services, teamKey, 300_000, { model: 'gpt-4o' });
    client = await signIn(app, gail.email, gail.password);
  });
  afterAll(() => app.close());

  it('lists every request of the visible keys, newest first, with a total', async () => {
    const res = await client.get('/usage');
    expect(res.status).toBe(200);
    const order = ['ops-key', '=cmd|calc', 'alpha'].map((name) => res.text.indexOf(`>${name}<`));
    expect(order.every((i) => i > 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(res.text).toContain('A$1.30'); // readable total
    expect(res.text).toContain('A$1.000001'); // exact per request
    expect(res.text).toContain('3 requests');
    // Cache reads and writes beside the uncached input, reasoning within the output.
    expect(res.text).toContain('+ 9,000 cached');
    expect(res.text).toContain('+ 300 cache write 5m');
    expect(res.text).toContain('+ 40 cache write 1h');
    expect(res.text).toContain('incl. 7 reasoning');
  });

  it('filters by key, team and local date range, as a fragment for htmx', async () => {
    const byKey = await client.get(`/usage?key=${keyA}`, htmx);
    expect(byKey.text).not.toContain('<html');
    expect(byKey.text).toContain('>alpha<');
    expect(byKey.text).not.toContain('>ops-key<');
    const byTeam = await client.get(`/usage?team=${teamId}`);
    expect(byTeam.text).toContain('>ops-key<');
    expect(byTeam.text).not.toContain('>alpha<');
    // 11 March in Sydney only.
    const oneDay = await client.get('/usage?from=2026-03-11&to=2026-03-11');
    expect(oneDay.text).toContain('>=cmd|calc<');
    expect(oneDay.text).not.toContain('>alpha<');
    expect(oneDay.text).not.toContain('>ops-key<');
    expect(oneDay.text).toContain('1 request ');
  });

  it("refuses another user's key as a filter", async () => {
    const other = await makeUser(app.services);
    const theirs = await makeKey(app.services, other, { name: 'not yours' });
    expect((await client.get(`/usage?key=${theirs.key.id}`)).status).toBe(404);
    expect((await client.get(`/usage.csv?key=${theirs.key.id}`)).status).toBe(404);
  });

  it('exports the filtered log as CSV with exact AUD amounts and formula-safe cells', async () => {
    const res = await client.get('/usage.csv');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="modelbridge-usage-/);
    const lines = res.text.trim().split('\r\n');
    expect(lines[0]).toBe('time_utc,request_id,key_id,key_name,team_id,model,provider,endpoint,outcome,http_status,input_tokens,output_tokens,cost_aud,estimated,streamed,latency_ms,'
      + 'cached_input_tokens,cache_write_5m_tokens,cache_write_1h_tokens,reasoning_tokens,key_tags');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain(',ops-key,');
    expect(lines[3]).toMatch(/^2026-03-10T01:00:00\.000Z,/);
    expect(lines[3]).toContain(',1.000001,');
    // Each kind of token apart, at the end of the row: cached input, 5-minute and 1-hour cache writes, reasoning.
    // The key's tags last (none here).
    expect(lines[3]).toMatch(/,10,20,1\.000001,false,false,42,9000,300,40,7,$/);
    expect(lines[2]).toMatch(/,42,0,0,0,0,$/);
    expect(lines[2]).toContain(",'=cmd|calc,");
    expect(lines[2]).toContain(',0.00002,');
    const filtered = await client.get(`/usage.csv?team=${teamId}`);
    expect(filtered.text.trim().split('\r\n')).toHaveLength(2);
  });

  it('pages through long logs', async () => {
    for (let i = 0; i < 55; i++) await recordUsage(app.services, keyA, 1);
    const first = await client.get(`/usage?key=${keyA}`);
    const next = /href="(\/usage\?key=[^"]+cursor=\d+)"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
    expect(next).toBeDefined();
    const second = await client.get(next!);
    expect(second.status).toBe(200);
    const rows = (t: string) => (t.match(/<td class="nowrap" title="req_/g) ?? []).length;
    expect(rows(first.text)).toBe(50);
    expect(rows(second.text)).toBe(6);
    expect(second.text).not.toContain('Older requests');
    const csv = await client.get(`/usage.csv?key=${keyA}`);
    expect(csv.text.trim().split('\r\n')).toHaveLength(57);
  });
});

describe('management tokens page', () => {
  let app: TestApp;
  let hal: TestUser;
  let client: PortalClient;

  beforeAll(async () => {
    app = await startTestApp();
    hal = await makeUser(app.services);
    client = await signIn(app, hal.email, hal.password);
  });
  afterAll(() => app.close());

  it('creates a token, shows it once, lists it, and revokes it after confirmation', async () => {
    const res = await client.post('/tokens', { name: 'GitHub Actions', expires: '2029-01-31' });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const secret = /mbm_[0-9A-Za-z]{30,}/.exec(res.text)?.[0];
    expect(secret).toBeDefined();
    expect(res.text).toContain('You will not see it again');
    const list = await client.get('/tokens');
    expect(list.text).not.toContain(secret);
    expect(list.text).toContain(`mbm_…${secret!.slice(-4)}`);
    expect(list.text).toContain('31 Jan 2029');
    // The token works for the API as its user.
    expect((await app.services.tokens.authenticate(secret!))?.id).toBe(hal.user.id);

    const [token] = await app.services.tokens.list(hal.actor);
    expect((await client.get(`/tokens/${token!.id}/revoke`)).text).toContain('Revoke this token?');
    const done = await client.post(`/tokens/${token!.id}/revoke`);
    expect(done.headers.location).toBe('/tokens?done=token_revoked');
    expect(await app.services.tokens.authenticate(secret!)).toBeNull();
  });

  it('validates the form and hides other users\' tokens', async () => {
    const bad = await client.post('/tokens', { name: '' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('A token name is 1 to 100 characters.');
    const other = await makeUser(app.services);
    const theirs = await app.services.tokens.create({ name: 'theirs' }, other.actor);
    expect((await client.get(`/tokens/${theirs.token.id}/revoke`)).status).toBe(404);
    expect((await client.post(`/tokens/${theirs.token.id}/revoke`)).status).toBe(404);
    expect(await app.services.tokens.authenticate(theirs.secret)).not.toBeNull();
  });
});
