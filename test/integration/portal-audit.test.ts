import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { adminActor, makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { signIn, type PortalClient } from '../support/portal.js';

/** The admin audit page (issue #15, point 13): sentences with links and AUD amounts, filtered by who, what and when. */
describe('admin audit log', () => {
  let app: TestApp;
  let root: TestUser;
  let ivy: TestUser;
  let admin: PortalClient;
  let keyId: string;
  let teamId: string;

  beforeAll(async () => {
    app = await startTestApp();
    root = await makeUser(app.services, { admin: true, email: 'root@audit.test' });
    ivy = await makeUser(app.services, { email: 'ivy@audit.test' });
    admin = await signIn(app, root.email, root.password);
    keyId = (await makeKey(app.services, ivy, { name: 'Build box', spendLimitMicro: 7_500_000 })).key.id;
    teamId = (await makeTeam(app.services, root, { name: 'Ops' })).id;
    await app.services.balances.credit({ teamId }, 12_340_000, 'PO 77', root.actor);
    await app.services.keys.revoke(keyId, { ...adminActor, userId: 'cli' });
  });
  afterAll(() => app.close());

  it('reads as sentences with links, AUD and who/where, with no raw ids or nulls', async () => {
    const res = await admin.get('/admin/audit');
    expect(res.status).toBe(200);
    expect(res.text).toContain(`created the key <a href="/keys/${keyId}">Build box</a>, spending limit A$7.50`);
    expect(res.text).toContain(`topped up the team balance of <a href="/teams/${teamId}">Ops</a> by A$12.34 (“PO 77”)`);
    expect(res.text).toContain('The command line (an operator) revoked the key');
    expect(res.text).toContain('from 127.0.0.1');
    expect(res.text).not.toContain('note: null');
    expect(res.text).not.toContain('12340000');
  });

  it('filters by actor, action and period', async () => {
    const byCli = await admin.get('/admin/audit?actor=cli');
    expect(byCli.text).toContain('revoked the key');
    expect(byCli.text).not.toContain('created the key');
    const byIvy = await admin.get(`/admin/audit?actor=user:${ivy.user.id}`);
    expect(byIvy.text).toContain('created the key');
    expect(byIvy.text).not.toContain('topped up');
    const credits = await admin.get('/admin/audit?action=balance.credit');
    expect(credits.text).toContain('topped up');
    expect(credits.text).not.toContain('created the key');
    expect((await admin.get('/admin/audit?from=2020-01-01&to=2020-01-31')).text).toContain('Nothing recorded matching these filters');
    expect((await admin.get('/admin/audit?from=2020-01-01')).text).toContain('created the key');
    const swapped = await admin.get('/admin/audit?from=2030-01-02&to=2030-01-01');
    expect(swapped.text).toContain('swap them');
  });

  it('answers junk filters with the page, never a 5xx', async () => {
    for (const query of ['actor=user:%27;drop', 'action=nope', 'from=2026-99-99', 'to=yesterday', 'type=%00', 'before=abc', `actor=${'x'.repeat(500)}`]) {
      const res = await admin.get(`/admin/audit?${query}`);
      expect(res.status, query).toBe(200);
    }
  });

  it('is for installation admins only', async () => {
    const user = await signIn(app, ivy.email, ivy.password);
    expect((await user.get('/admin/audit')).status).toBe(403);
  });
});
