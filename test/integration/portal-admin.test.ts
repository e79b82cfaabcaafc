import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_NAMES } from '../../src/jobs/job.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { portalClient, signIn, type PortalClient } from '../support/portal.js';

const ADMIN_PAGES = ['/admin', '/admin/users', '/admin/keys', '/admin/usage', '/admin/balances', '/admin/plans', '/admin/models', '/admin/audit', '/admin/jobs'];

describe('admin area', () => {
  let app: TestApp;
  let root: TestUser;
  let ivy: TestUser;
  let admin: PortalClient;
  let user: PortalClient;

  beforeAll(async () => {
    app = await startTestApp();
    root = await makeUser(app.services, { admin: true, email: 'root@admin.test' });
    ivy = await makeUser(app.services, { email: 'ivy@admin.test' });
    admin = await signIn(app, root.email, root.password);
    user = await signIn(app, ivy.email, ivy.password);
  });
  afterAll(() => app.close());

  it('is closed to people who are not installation admins, and not in their navigation', async () => {
    for (const path of ADMIN_PAGES) expect((await user.get(path)).status, path).toBe(403);
    for (const path of ['/admin/users', '/admin/credit', '/admin/models', '/admin/plans', `/admin/users/${ivy.user.id}/disable`])
      expect((await user.post(path, { email: 'x@admin.test', password: 'long enough password', target: `user:${ivy.user.id}`, amount: '100' })).status, path).toBe(403);
    expect((await app.services.balances.personal(ivy.user.id)).prepaidMicro).toBe(0);
    expect((await user.get('/')).text).not.toContain('href="/admin"');
    expect((await admin.get('/')).text).toContain('href="/admin"');
  });

  it('opens every admin page for admins', async () => {
    expect((await admin.get('/admin')).headers.location).toBe('/admin/users');
    for (const path of ADMIN_PAGES.slice(1)) expect((await admin.get(path)).status, path).toBe(200);
  });

  it('creates users on a plan, changes plans, disables and re-enables them', async () => {
    const plans = await app.services.plans.list();
    const pro = plans.find((p) => p.name === 'Pro')!;
    const res = await admin.post('/admin/users', { email: 'new@admin.test', name: 'New Person', password: 'a long enough password', plan: pro.id });
    expect(res.headers.location).toBe('/admin/users?done=user_created');
    const created = (await app.services.users.findByEmail('new@admin.test'))!;
    expect(created).toMatchObject({ planId: pro.id, role: 'user' });
    const bad = await admin.post('/admin/users', { email: 'not-an-email', password: 'a long enough password' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Enter a valid e-mail address.');

    const free = plans.find((p) => p.name === 'Free')!;
    expect((await admin.post(`/admin/users/${created.id}/plan`, { plan: free.id })).status).toBe(303);
    expect((await app.services.users.get(created.id))!.planId).toBe(free.id);

    const session = await signIn(app, 'new@admin.test', 'a long enough password');
    expect((await admin.post(`/admin/users/${created.id}/disable`)).status).toBe(303);
    expect((await session.get('/')).status).toBe(303); // signed out at once
    expect((await admin.get('/admin/users')).text).toContain('Disabled');
    expect((await admin.post(`/admin/users/${created.id}/enable`)).status).toBe(303);
    expect((await app.services.users.get(created.id))!.disabled).toBe(false);
    const self = await admin.post(`/admin/users/${root.user.id}/disable`);
    expect(self.status).toBe(400);
    expect(self.text).toContain('cannot disable your own account');
  });

  it('records top-ups for users and teams', async () => {
    const team = await makeTeam(app.services, ivy, { name: 'Topped team' });
    expect((await admin.post('/admin/credit', { target: `user:${ivy.user.id}`, amount: '12.34', note: 'invoice 7' })).headers.location).toBe('/admin/balances?done=credited');
    expect((await app.services.balances.personal(ivy.user.id)).prepaidMicro).toBe(12_340_000);
    await admin.post('/admin/credit', { target: `team:${team.id}`, amount: 'A$1,000.5' });
    expect((await app.services.teams.get(team.id, ivy.actor)).balanceMicro).toBe(1_000_500_000);
    const page = await admin.get('/admin/balances');
    expect(page.text).toContain('A$12.34');
    expect(page.text).toContain('A$1,000.50');
    for (const [form, message] of [
      [{ target: `user:${ivy.user.id}`, amount: '0' }, 'A top-up is a positive AUD amount.'],
      [{ target: `user:${ivy.user.id}`, amount: 'lots' }, 'The amount must be an amount in AUD'],
      [{ target: '', amount: '5' }, 'Choose who receives the top-up.'],
    ] as const) {
      const res = await admin.post('/admin/credit', form);
      expect(res.status).toBe(400);
      expect(res.text).toContain(message);
    }
    expect((await admin.post('/admin/credit', { target: 'team:nope', amount: '5' })).status).toBe(404);
  });

  it('edits plans and the model catalog', async () => {
    const [first] = await app.services.plans.list();
    const res = await admin.post(`/admin/plans/${first!.id}`, { name: first!.name, included: '7.5', overageAllowed: 'on', overageCap: '20', isDefault: first!.isDefault ? 'on' : '' });
    expect(res.headers.location).toBe('/admin/plans?done=plan_saved');
    expect((await app.services.plans.list()).find((p) => p.id === first!.id)).toMatchObject({ includedMicro: 7_500_000, overageAllowed: true, overageCapMicro: 20_000_000 });
    expect((await admin.post('/admin/plans', { name: 'Team', included: '100' })).status).toBe(303);
    expect((await app.services.plans.list()).some((p) => p.name === 'Team')).toBe(true);

    const saved = await admin.post('/admin/models', { id: 'gpt-4o-mini', provider: 'openai', upstreamModel: 'gpt-4o-mini-2024', inputPrice: '0.25', outputPrice: '1', cachedInputPrice: '0.125', cacheWritePrice: '', maxOutputTokens: '8000' });
    expect(saved.headers.location).toBe('/admin/models?done=model_saved');
    expect(await app.services.models.find('gpt-4o-mini')).toMatchObject({
      upstreamModel: 'gpt-4o-mini-2024', inputMicroPerMTok: 250_000, outputMicroPerMTok: 1_000_000, cachedInputMicroPerMTok: 125_000, cacheWriteMicroPerMTok: null, cacheWrite1hMicroPerMTok: null, enabled: false,
    });
    expect((await admin.get('/admin/models')).text).toContain('name="cachedInputPrice" type="text" inputmode="decimal" class="price" placeholder="input" value="0.125"');
    const bad = await admin.post('/admin/models', { id: 'bad id!', provider: 'openai', upstreamModel: 'x', inputPrice: '1', outputPrice: '1', maxOutputTokens: '1' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('A model id is');
    expect((await admin.post('/admin/models', { id: 'm', provider: 'mistral', upstreamModel: 'x', inputPrice: '1', outputPrice: '1', maxOutputTokens: '1' })).status).toBe(400);
  });

  it('shows the audit log with actors, never a secret', async () => {
    const { secret } = await makeKey(app.services, ivy, { name: 'audited key' });
    const res = await admin.get('/admin/audit');
    expect(res.text).toContain('created the key <a href=');
    expect(res.text).toContain('topped up the prepaid balance of');
    expect(res.text).toContain('root@admin.test');
    expect(res.text).not.toContain(secret);
    const keysOnly = await admin.get('/admin/audit?type=key');
    expect(keysOnly.text).toContain('created the key');
    expect(keysOnly.text).not.toContain('topped up');
  });

  it('shows job status, "not run yet" before the first run, and the result after one', async () => {
    const before = await admin.get('/admin/jobs');
    // Every job is listed with what it does (a name alone tells an operator nothing).
    for (const name of JOB_NAMES) expect(before.text).toMatch(new RegExp(`>${name}</strong><div class="muted small">[A-Z][^<]+\\.</div>`));
    expect(before.text).toContain('Not run yet');
    await app.t.db('job_locks').insert({ name: 'reconcile', owner: null, locked_until: null, last_started_at: new Date(), last_finished_at: new Date(), last_result: 'ok: 3 accounts checked, no drift' });
    const after = await admin.get('/admin/jobs');
    expect(after.text).toContain('ok: 3 accounts checked, no drift');
  });

  it('lets installation admins look at any team', async () => {
    const team = await makeTeam(app.services, ivy, { name: 'Private team' });
    await makeKey(app.services, ivy, { name: 'ivy-team-key', teamId: team.id });
    const res = await admin.get(`/teams/${team.id}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('installation administrator');
    expect(res.text).toContain('ivy-team-key');
    expect(res.text).not.toContain('Add member');
    expect((await portalClient(app, user.cookie).get(`/teams/${team.id}`)).status).toBe(200);
  });

  it('lists every key for incident response and revokes any of them, audited as an admin revocation', async () => {
    const { key, secret } = await makeKey(app.services, ivy, { name: 'leaked-in-a-gist' });
    const list = await admin.get('/admin/keys');
    expect(list.text).toContain('leaked-in-a-gist');
    expect(list.text).toContain('ivy@admin.test');
    expect(list.text).not.toContain(secret);
    const detail = await admin.get(`/keys/${key.id}`);
    expect(detail.status).toBe(200);
    expect(detail.text).not.toContain('Edit limit');
    expect((await admin.post(`/keys/${key.id}/limit`, { limit: '1' })).status).toBe(404);
    expect((await admin.get(`/keys/${key.id}/revoke?back=/admin/keys`)).text).toContain('value="/admin/keys"');
    const revoked = await admin.post(`/keys/${key.id}/revoke`, { back: '/admin/keys' });
    expect(revoked.headers.location).toBe('/admin/keys?done=revoked');
    expect((await app.services.keys.get(key.id, ivy.actor)).status).toBe('revoked');
    const [event] = await app.services.audit.list(app.t.db, { targetType: 'key', targetId: key.id, limit: 1 });
    expect(event).toMatchObject({ action: 'key.revoke', actorId: root.user.id, details: { asInstallationAdmin: true } });
    expect((await user.get('/keys')).text).toContain('leaked-in-a-gist');
  });
});

describe('admin forms keep exact amounts', () => {
  it('pre-fills plan and price inputs with exact values, so saving unchanged changes nothing', async () => {
    const app = await startTestApp();
    try {
      const root = await makeUser(app.services, { admin: true });
      const admin = await signIn(app, root.email, root.password);
      const [plan] = await app.services.plans.list();
      await app.services.plans.update(plan!.id, { includedMicro: 5_123_456 }, root.actor);
      expect((await admin.get('/admin/plans')).text).toContain('value="5.123456"');
      expect((await admin.get('/admin/models')).text).toContain('value="3.875"');
    } finally {
      await app.close();
    }
  });
});

describe('admin navigation', () => {
  it('marks Admin, not API keys, as the current section on /admin/keys', async () => {
    const app = await startTestApp();
    try {
      const root = await makeUser(app.services, { admin: true });
      const res = await (await signIn(app, root.email, root.password)).get('/admin/keys');
      expect(res.text).toContain('<a href="/admin" aria-current="page">Admin</a>');
      expect(res.text).not.toContain('<a href="/keys" aria-current="page">');
    } finally {
      await app.close();
    }
  });
});
