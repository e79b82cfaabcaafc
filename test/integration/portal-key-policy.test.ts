import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { adminActor, makeUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';

describe(`the create form under guard-rails (${dialect})`, () => {
  let app: TestApp;
  let client: PortalClient;

  beforeAll(async () => {
    app = await startTestApp();
    const ann = await makeUser(app.services);
    client = await signIn(app, ann.email, ann.password);
    await app.services.keyPolicy.setInstallation({ requireLimit: true, maxExpiryDays: 30 }, adminActor);
  });
  afterAll(async () => app.close());

  it('shows the policy in force and marks the limit and expiry fields on refusal', async () => {
    expect((await client.get('/keys')).text).toContain('This installation requires a spending limit and an expiry within 30 days for every new key.');
    const res = await client.post('/keys', { name: 'Cursor', limit: '', expires: '', owner: 'personal' });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/id="key-limit-error">This installation requires a spending limit/);
    expect(res.text).toMatch(/id="key-expires-error">This installation requires an expiry within 30 days/);
    expect(await app.services.db('api_keys').select('id')).toEqual([]);
  });
});
