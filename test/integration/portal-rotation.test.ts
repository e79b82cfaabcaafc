import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';

const DAY = 24 * 3600_000;

/** Rotate-by dates and scheduled rotation in the portal: key list, key detail, the dashboard's "Keys that need attention". */
describe(`portal: rotation due and scheduled rotation (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let ann: TestUser;
  let client: PortalClient;

  beforeAll(async () => {
    clock = new ManualClock('2026-12-02T00:00:00.000Z');
    app = await startTestApp({ clock, env: { MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    ann = await makeUser(app.services);
    client = await signIn(app, ann.email, ann.password);
  });
  afterAll(() => app.close());

  it('shows when a key is due for rotation on the list, the detail page and the dashboard', async () => {
    const team = await makeTeam(app.services, ann);
    await app.services.keyPolicy.setTeam(team.id, { maxKeyAgeDays: 10 }, ann.actor);
    const { key } = await makeKey(app.services, ann, { name: 'team deploy', teamId: team.id });
    const { key: personal } = await makeKey(app.services, ann, { name: 'my laptop' });

    // 10 days out: the detail page states the date; not yet something that needs attention.
    let detail = await client.get(`/keys/${key.id}`);
    expect(detail.text).toContain('Rotate by <strong>12 Dec 2026');
    expect((await client.get(`/keys/${personal.id}`)).text).not.toContain('id="rotation"');
    expect((await client.get('/')).text).not.toContain('Rotation due');

    clock.set(new Date(key.createdAt.getTime() + 3 * DAY));
    expect((await client.get('/keys')).text).toContain('Rotate by 12 Dec 2026');
    const dashboard = (await client.get('/')).text;
    expect(dashboard).toContain('Rotation due in 7 days');
    expect(dashboard).toContain(`/keys/${key.id}`);

    clock.set(new Date(key.createdAt.getTime() + 10 * DAY));
    expect((await client.get('/keys')).text).toContain('Rotation overdue');
    expect((await client.get('/')).text).toContain('Rotation overdue');
    detail = await client.get(`/keys/${key.id}`);
    expect(detail.text).toContain('Rotation overdue: this key reached');
    expect(detail.text).toContain('it keeps working');
  });

  it('turns scheduled rotation on from the create form and the detail page, only with a webhook for the new secret', async () => {
    const refused = await client.post('/keys', { name: 'ci runner', owner: 'personal', autoRotate: '1' });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('key.rotated_secret');
    expect(refused.text).toContain('id="key-auto-rotate-error"');

    const { key } = await makeKey(app.services, ann, { name: 'nightly' });
    const toggleRefused = await client.post(`/keys/${key.id}/auto-rotate`, { autoRotate: '1' });
    expect(toggleRefused.status).toBe(400);
    expect(toggleRefused.text).toContain('key.rotated_secret');

    await app.services.webhooks.create({ url: 'http://127.0.0.1:9/hooks', events: ['key.rotated_secret'] }, ann.actor);
    const on = await client.post(`/keys/${key.id}/auto-rotate`, { autoRotate: '1' });
    expect(on.status).toBe(303);
    expect((await app.services.keys.get(key.id, ann.actor)).autoRotate).toBe(true);
    expect((await client.get(on.headers.location!)).text).toContain('Scheduled rotation is on');

    const created = await client.post('/keys', { name: 'ci runner', owner: 'personal', autoRotate: '1' });
    expect(created.status).toBe(201);
    const made = (await app.services.keys.list({}, ann.actor)).find((k) => k.name === 'ci runner')!;
    expect(made.autoRotate).toBe(true);

    await client.post(`/keys/${key.id}/auto-rotate`, { autoRotate: '0' });
    expect((await app.services.keys.get(key.id, ann.actor)).autoRotate).toBe(false);
  });
});
