import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';
import { okSettlement as ok } from '../support/metering-rows.js';

describe('spend alerts in the portal', () => {
  let app: TestApp;
  let ann: TestUser;
  let client: PortalClient;

  beforeAll(async () => {
    app = await startTestApp();
    ann = await makeUser(app.services, { prepaidMicro: 100_000_000 });
    client = await signIn(app, ann.email, ann.password);
  });
  afterAll(() => app.close());

  const spend = async (keyId: string, cost: number, teamId: string | null = null, ownerId = ann.user.id) => {
    const hold = await app.services.metering.admit({
      requestId: newId(), keyId, ownerId, teamId, estimateMicro: cost, model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', streamed: false,
    });
    await app.services.metering.settle(hold, ok(cost));
  };

  it('shows on the key page that a threshold was crossed this period, and lists the crossings', async () => {
    const { key } = await makeKey(app.services, ann, { spendLimitMicro: 10_000_000 });
    await app.services.keys.update(key.id, { limitReset: 'monthly' }, ann.actor);
    expect((await client.get(`/keys/${key.id}`)).text).toContain('No threshold crossed yet.');
    await spend(key.id, 8_200_000);
    const page = (await client.get(`/keys/${key.id}`)).text;
    expect(page).toContain('This key has used 80 % of its A$10.00 monthly limit.');
    expect(page).toContain('This key has used 50 % of its A$10.00 monthly limit.'); // in the list
  });

  it('sets a key’s thresholds from the controls form, refusing bad ones with 400', async () => {
    const { key } = await makeKey(app.services, ann, { spendLimitMicro: 1_000_000 });
    const res = await client.post(`/keys/${key.id}/controls`, { limitReset: '', allowedModels: '', rpmLimit: '', tpmLimit: '', maxParallel: '', tags: '', alertThresholds: '25, 75 %' });
    expect(res.status).toBe(303);
    expect((await app.services.keys.get(key.id, ann.actor)).alertThresholds).toEqual([25, 75]);
    const bad = await client.post(`/keys/${key.id}/controls`, { limitReset: '', allowedModels: '', rpmLimit: '', tpmLimit: '', maxParallel: '', tags: '', alertThresholds: '0, 150' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('1 to 100');
  });

  it('sets the personal thresholds on the account page and shows the notice there and on the dashboard', async () => {
    const bob = await makeUser(app.services); // Free: A$5.00 included
    const bobClient = await signIn(app, bob.email, bob.password);
    expect((await bobClient.post('/account/alerts', { alertThresholds: '10' })).status).toBe(303);
    const { key } = await makeKey(app.services, bob);
    await spend(key.id, 600_000, null, bob.user.id);
    const notice = 'You have used 10 % of your plan’s A$5.00 included usage this month.';
    expect((await bobClient.get('/account/alerts')).text).toContain(notice);
    expect((await bobClient.get('/')).text).toContain(notice);
    expect((await bobClient.post('/account/alerts', { alertThresholds: 'lots' })).status).toBe(400);
  });

  it('shows a team’s balance alert on the team page, and lets its owner set the thresholds', async () => {
    const team = await makeTeam(app.services, ann, { balanceMicro: 20_000_000 });
    expect((await client.post(`/teams/${team.id}/alerts`, { alertThresholds: '30' })).status).toBe(303);
    const { key } = await makeKey(app.services, ann, { teamId: team.id });
    await spend(key.id, 7_000_000, team.id);
    expect((await client.get(`/teams/${team.id}`)).text).toContain('The team has spent 30 % of its balance at the last top-up (A$20.00).');
  });
});
