import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';

/** The Webhooks pages with plain form posts (no JavaScript): the secret once and uncached, clear 4xx for bad input. */
describe(`webhooks in the portal (${dialect})`, () => {
  let app: TestApp;
  let ann: TestUser;
  let client: PortalClient;
  let other: PortalClient;
  const form = (fields: Array<[string, string]>) => new URLSearchParams(fields).toString() as unknown as Record<string, string>;

  beforeAll(async () => {
    app = await startTestApp({ env: { MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '0' } });
    ann = await makeUser(app.services);
    const bea = await makeUser(app.services);
    client = await signIn(app, ann.email, ann.password);
    other = await signIn(app, bea.email, bea.password);
  });
  afterAll(() => app.close());

  it('creates an endpoint with several events and shows its secret once, uncacheable', async () => {
    const res = await client.post('/webhooks', form([['url', 'https://hooks.example.com/mb'], ['events', 'key.revoked'], ['events', 'key.expiring']]));
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toContain('no-store');
    const secret = /whsec_[A-Za-z0-9+/=]+/.exec(res.text)?.[0];
    expect(secret).toBeDefined();
    const page = await client.get('/webhooks');
    expect(page.text).toContain('https://hooks.example.com/mb');
    expect(page.text).toContain('key.revoked, key.expiring');
    expect(page.text).not.toContain(secret);
  });

  it('answers bad input with 400 and the reason, keeping what was typed', async () => {
    const privateUrl = await client.post('/webhooks', form([['url', 'http://169.254.169.254/latest'], ['events', 'key.revoked']]));
    expect(privateUrl.status).toBe(400);
    expect(privateUrl.text).toContain('loopback, private or link-local');
    expect(privateUrl.text).toContain('value="http://169.254.169.254/latest"');
    const noEvents = await client.post('/webhooks', form([['url', 'https://hooks.example.com/x']]));
    expect(noEvents.status).toBe(400);
    expect(noEvents.text).toContain('Choose at least one event');
  });

  it('hides an endpoint from other users, and deletes through the confirmation page', async () => {
    const [endpoint] = await app.services.webhooks.list({}, ann.actor);
    expect((await other.get(`/webhooks/${endpoint!.id}`)).status).toBe(404);
    expect((await other.post(`/webhooks/${endpoint!.id}/delete`)).status).toBe(404);
    expect((await client.get(`/webhooks/${endpoint!.id}/delete`)).text).toContain('Delete this webhook?');
    const queued = await client.post(`/webhooks/${endpoint!.id}/test`);
    expect(queued.status).toBe(303);
    expect((await client.get(queued.headers.location!)).text).toContain('webhook.test');
    const deleted = await client.post(`/webhooks/${endpoint!.id}/delete`);
    expect(deleted.headers.location).toBe('/webhooks?done=webhook_deleted');
    expect((await client.get('/webhooks')).text).not.toContain('https://hooks.example.com/mb');
  });
});
