import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { LEAK_NOTICE_DAYS } from '../../src/domain/keys/leaks.service.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn } from '../support/portal.js';

// Issue #18.1: a key revoked because it leaked is told, in the portal, to its owner and — for a team key — to the
// team's owners and admins, with who stopped it and where it was found; nobody else sees it.
describe(`leaked keys in the portal (${dialect})`, () => {
  const clock = new ManualClock('2026-12-03T01:00:00.000Z');
  let app: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let cy: TestUser;
  let teamId: string;

  beforeAll(async () => {
    app = await startTestApp({ clock });
    [ada, bob, cy] = await Promise.all([makeUser(app.services), makeUser(app.services), makeUser(app.services)]);
    // Ada owns the team; Bob is a member with a team key; Cy is another member.
    ({ id: teamId } = await makeTeam(app.services, ada, { members: [[bob, 'member'], [cy, 'member']], name: 'Platform' }));
  });
  afterAll(async () => app?.close());

  const dashboard = async (who: TestUser) => (await (await signIn(app, who.email, who.password)).get('/')).text;

  it('tells the owner and the team’s owners of a scanner’s report, with where it was found, and nobody else', async () => {
    const key = await makeKey(app.services, bob, { name: 'ci-runner', teamId });
    const [finding] = await app.services.leaks.handleReport(
      [{ token: key.secret, type: 'modelbridge_api_key', url: 'https://github.com/acme/app/blob/abc/.env', source: 'content' }], 'github', {});
    expect(finding!.label).toBe('true_positive');

    for (const who of [bob, ada]) {
      const page = await dashboard(who);
      expect(page).toContain(`href="/keys/${key.key.id}">ci-runner</a> was revoked on`);
      expect(page).toContain('because github reported it leaked at <span class="mono">https://github.com/acme/app/blob/abc/.env</span>');
    }
    expect(await dashboard(cy)).not.toContain('leak-notice');
    const detail = await (await signIn(app, bob.email, bob.password)).get(`/keys/${key.key.id}`);
    expect(detail.text).toContain('because github reported it leaked');
    expect(detail.text).not.toContain(key.secret);
  });

  it('says so when the holder revoked the key with itself, and only on that key’s page', async () => {
    const own = await makeKey(app.services, cy, { name: 'laptop' });
    const other = await makeKey(app.services, cy, { name: 'desktop' });
    expect(await app.services.leaks.selfRevoke(own.secret, { ip: '203.0.113.9' })).toMatchObject({ id: own.key.id, alreadyRevoked: false });
    expect(await dashboard(cy)).toContain('by someone holding it, with the key itself as credential');
    const client = await signIn(app, cy.email, cy.password);
    expect((await client.get(`/keys/${other.key.id}`)).text).not.toContain('leak-notice');
    // Idempotent: a second self-revocation tells nothing new.
    await app.services.leaks.selfRevoke(own.secret, {});
    expect((await app.services.leaks.noticesFor(cy.actor)).filter((l) => l.keyId === own.key.id)).toHaveLength(1);
  });

  it(`drops a notice after ${LEAK_NOTICE_DAYS} days`, async () => {
    expect((await app.services.leaks.noticesFor(cy.actor)).length).toBeGreaterThan(0);
    clock.advance((LEAK_NOTICE_DAYS + 1) * 86_400_000);
    expect(await app.services.leaks.noticesFor(cy.actor)).toEqual([]);
    expect(await dashboard(ada)).not.toContain('leak-notice');
  });
});
