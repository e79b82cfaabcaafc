import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';

describe('key controls in the portal', () => {
  let app: TestApp;
  let ann: TestUser;
  let client: PortalClient;

  beforeAll(async () => {
    app = await startTestApp();
    ann = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    client = await signIn(app, ann.email, ann.password);
  });
  afterAll(() => app.close());

  it('sets the budget period, allow-list, rate limits and tags of a key from one form, and shows them', async () => {
    const { key } = await makeKey(app.services, ann);
    const form = await client.get(`/keys/${key.id}/controls`);
    expect(form.status).toBe(200);
    const res = await client.post(`/keys/${key.id}/controls`, {
      limitReset: 'weekly', allowedModels: 'gpt-4o-mini, gpt-4o', rpmLimit: '60', tpmLimit: '', maxParallel: '4', tags: 'project-x, ci',
    });
    expect(res.status).toBe(303);
    expect(await app.services.keys.get(key.id, ann.actor)).toMatchObject({
      limitReset: 'weekly', allowedModels: ['gpt-4o', 'gpt-4o-mini'], rpmLimit: 60, tpmLimit: null, maxParallel: 4, tags: ['ci', 'project-x'],
    });
    const page = (await client.get(`/keys/${key.id}`)).text;
    expect(page).toContain('weekly limit');
    expect(page).toContain('60 req/min');
    expect(page).toContain('project-x');
  });

  it('answers a bad value with the form again and a clear message, never a 5xx', async () => {
    const { key } = await makeKey(app.services, ann);
    const res = await client.post(`/keys/${key.id}/controls`, { limitReset: '', allowedModels: 'no-such-model', rpmLimit: 'ten', tags: '' });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/whole number|not in the catalog/);
  });

  it('pauses and resumes a key, shown as Paused', async () => {
    const { key } = await makeKey(app.services, ann);
    expect((await client.post(`/keys/${key.id}/disable`, {})).status).toBe(303);
    expect((await app.services.keys.get(key.id, ann.actor)).status).toBe('disabled');
    expect((await client.get(`/keys/${key.id}`)).text).toContain('Paused');
    expect((await client.post(`/keys/${key.id}/enable`, {})).status).toBe(303);
    expect((await app.services.keys.get(key.id, ann.actor)).status).toBe('active');
  });

  it('lets a team owner set a member budget on the team page, and the member sees it', async () => {
    const member = await makeUser(app.services);
    const team = await makeTeam(app.services, ann, { members: [[member, 'member']] });
    const res = await client.post(`/teams/${team.id}/members/${member.user.id}/budget`, { budget: '25' });
    expect(res.status).toBe(303);
    const memberClient = await signIn(app, member.email, member.password);
    const page = (await memberClient.get(`/teams/${team.id}`)).text;
    expect(page).toContain('25.00');
    expect((await memberClient.post(`/teams/${team.id}/members/${member.user.id}/budget`, { budget: '' })).status).toBe(403);
  });
});
