import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';
import { ManualClock } from '../../src/domain/clock.js';

/** Issue #15 point 9: the small things a new user trips over. */
describe(`portal: the small things (${dialect})`, () => {
  let app: TestApp;
  let clock: ManualClock;
  let hana: TestUser;
  let client: PortalClient;

  beforeAll(async () => {
    // 23:30 UTC on 2 Dec is already 3 Dec in Sydney.
    clock = new ManualClock('2026-12-02T23:30:00.000Z');
    app = await startTestApp({ clock });
    hana = await makeUser(app.services, { prepaidMicro: 10_000_000 });
    client = await signIn(app, hana.email, hana.password);
  });
  afterAll(() => app.close());

  it('welcomes a new account (not "welcome back"), and welcomes it back once it has a key', async () => {
    expect((await client.get('/')).text).toMatch(/<h1>Welcome, /);
    await makeKey(app.services, hana, { name: 'first' });
    expect((await client.get('/')).text).toMatch(/<h1>Welcome back, /);
  });

  it('names the CSV export with the local date, not the UTC one', async () => {
    const res = await client.get('/usage.csv');
    expect(res.headers['content-disposition']).toContain('modelbridge-usage-2026-12-03.csv');
  });

  it('says so when the from date is after the to date, instead of an empty log', async () => {
    const swapped = await client.get('/usage?from=2026-12-03&to=2026-11-01');
    expect(swapped.text).toContain('data-range-error');
    expect(swapped.text).toContain('is after the “To” date');
    expect((await client.get('/usage?from=2026-11-01&to=2026-12-03')).text).not.toContain('data-range-error');
  });

  it('draws no empty progress bar under "no limit", and one under a limit', async () => {
    const none = await makeKey(app.services, hana, { name: 'unlimited' });
    const capped = await makeKey(app.services, hana, { name: 'capped', spendLimitMicro: 1_000_000 });
    const page = (await client.get('/keys')).text;
    const row = (id: string) => page.slice(page.indexOf(`id="key-${id}"`), page.indexOf('</tr>', page.indexOf(`id="key-${id}"`)));
    expect(row(none.key.id)).not.toContain('class="meter');
    expect(row(capped.key.id)).toContain('class="meter');
  });

  it('capitalises role options like the role badges', async () => {
    const team = await makeTeam(app.services, hana, { name: 'Roles' });
    const page = (await client.get(`/teams/${team.id}`)).text;
    expect(page).toContain('>Member</option>');
    expect(page).not.toContain('>member</option>');
  });
});
