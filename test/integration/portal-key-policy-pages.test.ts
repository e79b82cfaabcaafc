import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { dialect } from '../support/db.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { htmx, signIn, type PortalClient } from '../support/portal.js';
import { NO_KEY_POLICY } from '../../src/domain/keys/key-policy.js';

/**
 * The guard-rails on new keys in the portal (issue #18.5): a team's owners and admins set them on the team page, the
 * installation's admins at /admin/key-policy; everyone else sees them read-only; keys that break them are listed.
 */
describe(`guard-rail pages (${dialect})`, () => {
  let app: TestApp;
  let teamId: string;
  const people = {} as Record<'owner' | 'member' | 'viewer' | 'outsider' | 'admin', TestUser>;
  const clients = {} as Record<keyof typeof people, PortalClient>;
  let ownerKeyId: string;
  let memberKeyId: string;
  let personalKeyId: string;

  beforeAll(async () => {
    app = await startTestApp();
    for (const who of ['owner', 'member', 'viewer', 'outsider', 'admin'] as const) {
      people[who] = await makeUser(app.services, { email: `${who}@policy.test`, admin: who === 'admin' });
      clients[who] = await signIn(app, people[who].email, people[who].password);
    }
    const team = await makeTeam(app.services, people.owner, { name: 'Research', members: [[people.member, 'member'], [people.viewer, 'viewer']] });
    teamId = team.id;
    ownerKeyId = (await makeKey(app.services, people.owner, { name: 'owner-unlimited', teamId })).key.id;
    memberKeyId = (await makeKey(app.services, people.member, { name: 'member-unlimited', teamId })).key.id;
    await makeKey(app.services, people.member, { name: 'member-compliant', teamId, spendLimitMicro: 5_000_000, expiresAt: new Date(Date.now() + 10 * 86_400_000) });
    personalKeyId = (await makeKey(app.services, people.outsider, { name: 'outsider-personal' })).key.id;
  });
  afterAll(async () => app?.close());

  const teamPolicy = () => app.services.keyPolicy.team(teamId, people.owner.actor);
  const policyAudits = async (action: string) => app.services.db('audit_events').where({ action }).count({ n: '*' }).first().then((r) => Number(r?.n));

  it('lets an owner switch rules on with a plain form: 303 to the team page, stored and audited', async () => {
    const form = await clients.owner.get(`/teams/${teamId}`);
    expect(form.text).toContain(`action="/teams/${teamId}/key-policy"`);
    expect(form.text).toContain('In force for new team keys:</strong> no guard-rails');

    const res = await clients.owner.post(`/teams/${teamId}/key-policy`, { requireLimit: 'on', maxExpiryDaysOn: 'on', maxExpiryDays: '30' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/teams/${teamId}?done=key_policy_saved#key-policy`);
    expect(await teamPolicy()).toEqual({ requireLimit: true, maxExpiryDays: 30, uniqueNames: false, maxKeyAgeDays: null });
    expect(await policyAudits('team.key_policy')).toBe(1);

    const page = await clients.owner.get(res.headers.location!);
    // Said inside the section too: without JavaScript the browser lands on #key-policy, below the page's flash.
    expect(page.text.slice(page.text.indexOf('id="key-policy"'))).toContain('Guard-rails saved.');
    expect(page.text).toContain('This team requires a spending limit and an expiry within 30 days for every new key.');
    expect(page.text).toMatch(/id="kp-requireLimit"[^>]* checked/);
    expect(page.text).toMatch(/id="kp-maxExpiryDays"[^>]* value="30"/);

    // The maximum key age (rotation due) is one more days rule of the same form; the audit log says it in words.
    const age = await clients.owner.post(`/teams/${teamId}/key-policy`, { requireLimit: 'on', maxExpiryDaysOn: 'on', maxExpiryDays: '30', maxKeyAgeDaysOn: 'on', maxKeyAgeDays: '90' });
    expect(age.status).toBe(303);
    expect(await teamPolicy()).toEqual({ requireLimit: true, maxExpiryDays: 30, uniqueNames: false, maxKeyAgeDays: 90 });
    const again = (await clients.owner.get(age.headers.location!)).text;
    expect(again).toMatch(/id="kp-maxKeyAgeDays"[^>]* value="90"/);
    expect(again).toContain('Keys are due for rotation 90 days after they are created.');
    const refused = await clients.owner.post(`/teams/${teamId}/key-policy`, { maxKeyAgeDaysOn: 'on', maxKeyAgeDays: '0' });
    expect(refused.status).toBe(400);
    expect(await teamPolicy()).toMatchObject({ maxKeyAgeDays: 90 });
    await clients.owner.post(`/teams/${teamId}/key-policy`, { requireLimit: 'on', maxExpiryDaysOn: 'on', maxExpiryDays: '30' });
    expect(await teamPolicy()).toMatchObject({ maxKeyAgeDays: null });
  });

  it('lists the existing keys that break the policy in force (name linked, owner, rule), and changes none', async () => {
    const page = (await clients.owner.get(`/teams/${teamId}`)).text;
    const list = page.slice(page.indexOf('id="violating-title"'));
    expect(list).toContain(`<a class="key-name" href="/keys/${ownerKeyId}">owner-unlimited</a>`);
    expect(list).toContain(`<a class="key-name" href="/keys/${memberKeyId}">member-unlimited</a>`);
    expect(list).toContain('member@policy.test');
    expect(list).toContain('No spending limit');
    expect(list).toContain('No expiry');
    expect(list).not.toContain('member-compliant</a>');
    expect((await app.services.keys.get(ownerKeyId, people.owner.actor)).status).toBe('active');
  });

  it('answers an htmx save with just the section, saved notice included', async () => {
    const res = await clients.owner.post(`/teams/${teamId}/key-policy`, { requireLimit: 'on', maxExpiryDaysOn: 'on', maxExpiryDays: '30', uniqueNames: 'on' }, { ...htmx, 'HX-Target': 'key-policy' });
    expect(res.status).toBe(303);
    expect((await teamPolicy()).uniqueNames).toBe(true);
    // htmx follows the redirect with its headers: the GET answers with the section it swaps.
    const followed = await clients.owner.get(res.headers.location!.replace(/#.*/, ''), { ...htmx, 'HX-Target': 'key-policy' });
    expect(followed.text.trimStart()).toMatch(/^<section class="card section-gap" id="key-policy"/);
    expect(followed.text).not.toContain('id="team-members"');
    expect(followed.text).not.toContain('<html');
    expect(followed.text).toContain('Guard-rails saved.');
    expect(followed.headers.vary).toMatch(/HX-Target/i);
    // Other htmx requests to the page still get the members fragment.
    expect((await clients.owner.get(`/teams/${teamId}`, htmx)).text).toContain('id="team-members"');
  });

  it('marks a refused number of days at its field and changes nothing', async () => {
    const before = await teamPolicy();
    const audits = await policyAudits('team.key_policy');
    for (const days of ['0', '5000', 'soon', '']) {
      const res = await clients.owner.post(`/teams/${teamId}/key-policy`, { maxExpiryDaysOn: 'on', maxExpiryDays: days });
      expect(res.status, days).toBe(400);
      expect(res.text, days).toMatch(/id="kp-maxExpiryDays"[^>]* aria-invalid="true" aria-describedby="kp-maxExpiryDays-error"/);
      expect(res.text, days).toMatch(/<p class="field-error" id="kp-maxExpiryDays-error">[^<]*(1 to 1830|whole number)/);
      // What was sent stays in the form (the limit box unticked, as sent).
      expect(res.text, days).not.toMatch(/id="kp-requireLimit"[^>]* checked/);
    }
    const fragment = await clients.owner.post(`/teams/${teamId}/key-policy`, { maxExpiryDaysOn: 'on', maxExpiryDays: '0' }, { ...htmx, 'HX-Target': 'key-policy' });
    expect(fragment.status).toBe(400);
    expect(fragment.text).not.toContain('<html');
    expect(fragment.text).toContain('kp-maxExpiryDays-error');
    expect(await teamPolicy()).toEqual(before);
    expect(await policyAudits('team.key_policy')).toBe(audits);
  });

  it('refuses members (403) and outsiders (404) without a change, and shows members and viewers the rules read-only', async () => {
    const before = await teamPolicy();
    const member = await clients.member.post(`/teams/${teamId}/key-policy`, {});
    expect(member.status).toBe(403);
    const viewer = await clients.viewer.post(`/teams/${teamId}/key-policy`, {});
    expect(viewer.status).toBe(403);
    const outsider = await clients.outsider.post(`/teams/${teamId}/key-policy`, {});
    expect(outsider.status).toBe(404);
    expect(await teamPolicy()).toEqual(before);

    const memberPage = (await clients.member.get(`/teams/${teamId}`)).text;
    expect(memberPage).not.toContain(`action="/teams/${teamId}/key-policy"`);
    expect(memberPage).toMatch(/<dt>Every new key needs a spending limit<\/dt><dd>On<\/dd>/);
    expect(memberPage).toMatch(/<dt>Every new key expires<\/dt><dd>Within 30 days<\/dd>/);
    // A member sees only their own keys among the violating ones.
    expect(memberPage).toContain('Your keys that break the guard-rails');
    expect(memberPage).toContain('member-unlimited</a>');
    expect(memberPage).not.toContain('owner-unlimited');

    const viewerPage = (await clients.viewer.get(`/teams/${teamId}`)).text;
    expect(viewerPage).toContain('<dt>Every new key needs a spending limit</dt><dd>On</dd>');
    expect(viewerPage).not.toContain('violating-title');
  });

  it('refuses a cross-site form post (CSRF) without a change', async () => {
    const before = await teamPolicy();
    const res = await request(app.url).post(`/teams/${teamId}/key-policy`).type('form').set('Cookie', clients.owner.cookie!).set('Origin', 'https://evil.example').send({});
    expect(res.status).toBe(403);
    const noOrigin = await request(app.url).post(`/teams/${teamId}/key-policy`).type('form').set('Cookie', clients.owner.cookie!).send({});
    expect(noOrigin.status).toBe(403);
    expect(await teamPolicy()).toEqual(before);
  });

  it('unticking a box switches its rule off', async () => {
    expect((await clients.owner.post(`/teams/${teamId}/key-policy`, { uniqueNames: 'on', maxExpiryDays: '30' })).status).toBe(303);
    expect(await teamPolicy()).toEqual({ ...NO_KEY_POLICY, uniqueNames: true });
  });

  describe('the installation page', () => {
    it('is for installation admins only, linked from the admin navigation', async () => {
      expect((await clients.owner.get('/admin/key-policy')).status).toBe(403);
      const refused = await clients.owner.post('/admin/key-policy', { requireLimit: 'on' });
      expect(refused.status).toBe(403);
      expect(await app.services.keyPolicy.installation()).toEqual(NO_KEY_POLICY);
      const page = await clients.admin.get('/admin/users');
      expect(page.text).toContain('href="/admin/key-policy"');
    });

    it('saves the installation policy, lists every violating key of the installation, and the audit log says so', async () => {
      const res = await clients.admin.post('/admin/key-policy', { requireLimit: 'on' });
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/admin/key-policy?done=key_policy_saved');
      expect(await app.services.keyPolicy.installation()).toEqual({ ...NO_KEY_POLICY, requireLimit: true });

      const page = (await clients.admin.get(res.headers.location!)).text;
      expect(page).toContain('aria-current="page">Key guard-rails');
      expect(page).toContain('This installation requires a spending limit for every new key.');
      const list = page.slice(page.indexOf('id="violating-title"'));
      expect(list).toContain(`href="/keys/${personalKeyId}">outsider-personal</a>`);
      expect(list).toContain('outsider@policy.test');
      expect(list).toContain(`href="/keys/${ownerKeyId}">owner-unlimited</a>`);
      expect(list).toContain('Research');
      expect(list).toContain('Personal');

      const bad = await clients.admin.post('/admin/key-policy', { maxExpiryDaysOn: 'on', maxExpiryDays: '1831' });
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('id="kp-maxExpiryDays-error"');
      expect((await app.services.keyPolicy.installation()).maxExpiryDays).toBeNull();

      const audit = (await clients.admin.get('/admin/audit')).text;
      expect(audit).toContain('changed the installation’s guard-rails on new keys: a spending limit required; no expiry required; names need not be unique');
      expect(audit).toMatch(/changed the guard-rails on new keys of <a href="\/teams\/[^"]+">Research<\/a>: a spending limit required; an expiry within 30 days required/);
    });
  });
});
