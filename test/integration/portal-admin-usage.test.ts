import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';
import { clientFor, expectTrpcError, insertUsageEvent } from '../support/trpc.js';

/**
 * Installation-wide usage for admins (issue #15, point 12): one domain method (UsageReports.installationSummary)
 * behind the admin page, its CSV and admin.usage.summary.
 */
describe('installation usage', () => {
  let app: TestApp;
  let root: TestUser;
  let ivy: TestUser;
  let admin: PortalClient;
  let teamId: string;
  // 10–20 Nov 2026 in Sydney (UTC+11): the events below fall on 12 and 15 Nov local time, one on 25 Nov.
  const at = (iso: string) => new Date(iso);

  beforeAll(async () => {
    app = await startTestApp();
    root = await makeUser(app.services, { admin: true, email: 'root@usage.test' });
    ivy = await makeUser(app.services, { email: 'ivy@usage.test' });
    admin = await signIn(app, root.email, root.password);
    const team = await makeTeam(app.services, ivy, { name: 'Labs' });
    teamId = team.id;
    const personal = (await makeKey(app.services, ivy, { name: 'ivy-personal' })).key;
    const teamKey = (await makeKey(app.services, ivy, { name: 'labs-key', teamId })).key;
    const rootKey = (await makeKey(app.services, root, { name: 'root-key' })).key;
    await insertUsageEvent(app, personal, { model: 'gpt-4o-mini', costMicro: 1_250_000, inputTokens: 100, outputTokens: 50, at: at('2026-11-12T01:00:00Z') });
    await insertUsageEvent(app, teamKey, { model: 'claude-sonnet-4-5', provider: 'anthropic', costMicro: 3_000_000, inputTokens: 1000, outputTokens: 400, at: at('2026-11-15T05:00:00Z') });
    await insertUsageEvent(app, rootKey, { model: 'gpt-4o-mini', costMicro: 2_500, inputTokens: 7, outputTokens: 3, at: at('2026-11-15T06:00:00Z') });
    await insertUsageEvent(app, rootKey, { model: 'gpt-4o-mini', costMicro: 9_000_000, at: at('2026-11-25T01:00:00Z') });
  });
  afterAll(() => app.close());

  it('totals the period by model, provider, team and user, in AUD', async () => {
    const s = await app.services.usageReports.installationSummary({ from: at('2026-11-09T13:00:00Z'), to: at('2026-11-20T13:00:00Z') }, root.actor, 'Australia/Sydney');
    expect(s.total).toEqual({ requests: 3, inputTokens: 1107, outputTokens: 453, costMicro: 4_252_500 });
    expect(s.byProvider.map((b) => [b.id, b.costMicro])).toEqual([['anthropic', 3_000_000], ['openai', 1_252_500]]);
    expect(s.byModel.map((b) => [b.id, b.requests])).toEqual([['claude-sonnet-4-5', 1], ['gpt-4o-mini', 2]]);
    expect(s.byTeam.map((b) => [b.label, b.costMicro])).toEqual([['Labs', 3_000_000], ['', 1_252_500]]);
    expect(s.byUser.map((b) => [b.label, b.costMicro])).toEqual([['ivy@usage.test', 4_250_000], ['root@usage.test', 2_500]]);
    expect(s.over).toHaveLength(11);
    expect(s.over.find((d) => d.date === '2026-11-15')).toEqual({ date: '2026-11-15', costMicro: 3_002_500, requests: 2 });
    expect(s.over.reduce((sum, d) => sum + d.costMicro, 0)).toBe(s.total.costMicro);
  });

  it('draws long periods in runs of days, still adding up', async () => {
    const s = await app.services.usageReports.installationSummary({ from: at('2026-01-01T00:00:00Z'), to: at('2026-12-31T00:00:00Z') }, root.actor, 'Australia/Sydney');
    expect(s.bucketDays).toBeGreaterThan(1);
    expect(s.over.length).toBeLessThanOrEqual(62);
    expect(s.over.reduce((sum, d) => sum + d.costMicro, 0)).toBe(s.total.costMicro);
    expect(s.total.requests).toBe(4);
  });

  it('shows the page with the period filter, chart, totals and breakdowns', async () => {
    const res = await admin.get('/admin/usage?from=2026-11-10&to=2026-11-20');
    expect(res.status).toBe(200);
    expect(res.text).toContain('aria-current="page">Usage');
    expect(res.text).toContain('A$4.25');
    expect(res.text).toContain('across 3 requests');
    expect(res.text).toContain('<svg class="chart"');
    expect(res.text).toContain(`<a href="/teams/${teamId}">Labs</a>`);
    expect(res.text).toContain('Personal keys');
    expect(res.text).toContain('claude-sonnet-4-5');
    expect(res.text).toContain('anthropic');
    expect(res.text).toContain('href="/admin/usage.csv?from=2026-11-10&amp;to=2026-11-20"');
    expect((await admin.get('/admin/usage')).status).toBe(200);
  });

  it('exports the same numbers as CSV', async () => {
    const res = await admin.get('/admin/usage.csv?from=2026-11-10&to=2026-11-20');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/csv');
    expect(res.headers['content-disposition']).toContain('attachment; filename="modelbridge-installation-usage-2026-11-10-to-2026-11-20');
    const lines = res.text.trim().split('\r\n');
    expect(lines[0]).toBe('dimension,id,name,requests,input_tokens,output_tokens,cost_aud,from_utc,to_utc');
    expect(lines).toContain('provider,anthropic,anthropic,1,1000,400,3,2026-11-09T13:00:00.000Z,2026-11-20T13:00:00.000Z');
    expect(lines).toContain('team,,Personal keys,2,107,53,1.2525,2026-11-09T13:00:00.000Z,2026-11-20T13:00:00.000Z');
  });

  it('answers bad periods with a clear 400, never a 5xx', async () => {
    const swapped = await admin.get('/admin/usage?from=2026-11-20&to=2026-11-10');
    expect(swapped.status).toBe(400);
    expect(swapped.text).toContain('ends before it starts');
    expect((await admin.get('/admin/usage?from=2020-01-01&to=2026-01-01')).text).toContain('at most 366 days');
    for (const q of ['from=2026-99-99', 'to=yesterday', 'from=%00']) expect((await admin.get(`/admin/usage?${q}`)).status, q).toBe(400);
    expect((await admin.get('/admin/usage.csv?from=nope')).status).toBe(400);
  });

  it('is for installation admins only, on every door', async () => {
    const user = await signIn(app, ivy.email, ivy.password);
    expect((await user.get('/admin/usage')).status).toBe(403);
    expect((await user.get('/admin/usage.csv')).status).toBe(403);
    await expect(app.services.usageReports.installationSummary({ from: at('2026-11-01T00:00:00Z'), to: at('2026-12-01T00:00:00Z') }, ivy.actor, 'UTC')).rejects.toThrow(/installation admins/);
    const ivyApi = await clientFor(app, ivy);
    await expectTrpcError(ivyApi.admin.usage.summary.query({ from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' }), 'FORBIDDEN');
    const rootApi = await clientFor(app, root);
    const s = await rootApi.admin.usage.summary.query({ from: '2026-11-09T13:00:00Z', to: '2026-11-20T13:00:00Z' });
    expect(s.total).toEqual({ requests: 3, inputTokens: 1107, outputTokens: 453, costAud: '4.2525' });
    expect(s.byTeam.map((b) => b.label)).toEqual(['Labs', null]);
    await expectTrpcError(rootApi.admin.usage.summary.query({ from: '2026-12-01T00:00:00Z', to: '2026-11-01T00:00:00Z' }), 'BAD_REQUEST');
  });
});
