import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { ManualClock } from '../../src/domain/clock.js';
import { createJobs } from '../../src/jobs/index.js';
import { JOB_NAMES } from '../../src/jobs/job.js';
import { JobRunner } from '../../src/jobs/runner.js';
import { chromiumAvailable, htmxIdle, openBrowser, signIn, type Browser } from './support/browser.js';

const DAY = 86_400_000;

/** One chat completion through the proxy, as any tool would send it. */
async function chat(app: TestApp, key: string, model = 'gpt-4o'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 4000, messages: [{ role: 'user', content: 'Summarise the release notes, please.' }] }),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

describe.skipIf(!chromiumAvailable)('the portal in a real browser', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let clock: ManualClock;
  let ada: TestUser;
  let browser: Browser;

  beforeAll(async () => {
    fake = await startFakeUpstream({ replyTokens: 1500 });
    const realNow = Date.now();
    clock = new ManualClock(new Date(realNow - 21 * DAY));
    app = await startTestApp({ clock, env: { OPENAI_BASE_URL: fake.openaiBaseUrl, OPENAI_API_KEY: 'sk-test' } });
    const s = app.services;
    ada = await makeUser(s, { admin: true, plan: 'Pro', prepaidMicro: 50_000_000, email: 'ada@example.com' });
    const bob = await makeUser(s, { email: 'bob@example.com' });
    const carol = await makeUser(s, { email: 'carol@example.com' });
    const team = await makeTeam(s, ada, { name: 'Platform', balanceMicro: 200_000_000, members: [[bob, 'member'], [carol, 'viewer']] });
    const laptop = await makeKey(s, ada, { name: 'Claude Code – laptop', spendLimitMicro: 25_000_000, expiresAt: new Date(realNow + 60 * DAY) });
    const ci = await makeKey(s, ada, { name: 'CI pipeline', spendLimitMicro: 2_000_000, teamId: team.id, expiresAt: new Date(realNow + 5 * DAY) });
    const bobs = await makeKey(s, bob, { name: "Bob's notebook", teamId: team.id });
    await makeKey(s, ada, { name: 'Weekend experiments' });
    // Three weeks of real traffic through the proxy, at simulated times, so the charts have something to show.
    for (let d = 20; d >= 1; d--) {
      clock.set(new Date(realNow - d * DAY));
      fake.setReplyTokens(400 + ((d * 373) % 2600));
      await chat(app, laptop.secret);
      if (d % 2 === 0) await chat(app, ci.secret);
      if (d % 3 === 0) await chat(app, bobs.secret, 'gpt-4o-mini');
    }
    clock.set(new Date(realNow));
    fake.setReplyTokens(2000);
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await fake?.close();
  });

  it('signs in, creates a key, uses it, raises its limit inline, revokes it, and the proxy refuses it', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys`);
    // Not signed in: the portal sends the browser to the sign-in page, and back afterwards.
    expect(new URL(page.url()).pathname).toBe('/login');
    await browser.screenshot('login');
    await page.getByLabel('E-mail').fill(ada.email);
    await page.getByLabel('Password').fill(ada.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${app.url}/keys`);

    await page.goto(`${app.url}/`);
    await expect(page.getByRole('heading', { name: /Welcome back/ }).isVisible()).resolves.toBe(true);
    await browser.screenshot('dashboard');
    // Keyboard users get a skip link first, then the main navigation.
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(new URL(page.url()).hash).toBe('#main');

    // A mistake comes back as the form with the message, swapped in place (htmx is told to swap 4xx answers).
    await page.goto(`${app.url}/keys`);
    await page.getByLabel('Name').fill('Deploy bot');
    await page.getByLabel(/Spending limit/).fill('five dollars');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByText('The spending limit must be an amount in AUD').waitFor();
    await expect(page.getByLabel('Name').inputValue()).resolves.toBe('Deploy bot');
    // Chromium logs every 4xx as a console error; that one was expected, anything else still fails the test.
    expect(browser.problems).toEqual([expect.stringContaining('status of 400')]);
    browser.problems.length = 0;

    // Create a key with a small limit, through the htmx form.
    await page.goto(`${app.url}/keys`);
    await page.getByLabel('Name').fill('Deploy bot');
    await page.getByLabel(/Spending limit/).fill('0.05');
    const expiry = new Date(clock.now().getTime() + 30 * DAY).toISOString().slice(0, 10);
    await page.getByLabel(/Expires after/).fill(expiry);
    await page.getByRole('button', { name: 'Create key' }).click();
    const secretBox = page.locator('#new-secret');
    await secretBox.waitFor();
    const secret = (await secretBox.textContent())!.trim();
    expect(secret).toMatch(/^mbk_[A-Za-z0-9]{30,}$/);
    await expect(page.getByText('You will not see it again').isVisible()).resolves.toBe(true);
    // The new key is already in the table below (swapped out of band), showing only its last 4.
    await expect(page.locator('#keys-table').getByText(`mbk_…${secret.slice(-4)}`).isVisible()).resolves.toBe(true);
    await browser.screenshot('show-once');
    // Snippet tabs carry the secret and the proxy's base URL.
    await page.getByRole('tab', { name: 'Claude Code' }).click();
    await expect(page.locator('#code-claude-code').textContent()).resolves.toContain(`ANTHROPIC_AUTH_TOKEN="${secret}"`);

    // Use it: the first two requests fit under A$0.05, the second crosses it, the third is refused.
    expect((await chat(app, secret)).status).toBe(200);
    expect((await chat(app, secret)).status).toBe(200);
    const refused = await chat(app, secret);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('spend_limit_reached');

    // The spend shows in the table, and the key is at its limit.
    await page.goto(`${app.url}/keys`);
    const row = page.locator('tr', { hasText: 'Deploy bot' });
    await expect(row.getByText('Limit reached').isVisible()).resolves.toBe(true);
    await expect(row.locator('.spend').textContent()).resolves.toMatch(/A\$0\.0\d+ \/ A\$0\.05/);

    // Raise the limit inline: htmx swaps the row for a form and back.
    await row.getByRole('link', { name: /Edit the spending limit/ }).click();
    const input = page.getByLabel(/Spending limit for/);
    await input.waitFor();
    expect(new URL(page.url()).pathname).toBe('/keys'); // no navigation: an in-place swap
    // Escape cancels the edit; open it again.
    await htmxIdle(page);
    await input.press('Escape');
    await page.locator('tr', { hasText: 'Deploy bot' }).getByRole('link', { name: /Edit the spending limit/ }).waitFor();
    await htmxIdle(page);
    await page.locator('tr', { hasText: 'Deploy bot' }).getByRole('link', { name: /Edit the spending limit/ }).click();
    await input.waitFor();
    await input.fill('5');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('tr', { hasText: 'Deploy bot' }).getByText('A$5.00').waitFor();
    // The swapped-in row shows the new limit next to the spend, not only somewhere in the row.
    await expect(page.locator('tr', { hasText: 'Deploy bot' }).locator('.spend').textContent()).resolves.toMatch(/A\$0\.0\d+ \/ A\$5\.00/);
    await expect(page.locator('tr', { hasText: 'Deploy bot' }).getByText('Active').isVisible()).resolves.toBe(true);
    expect((await chat(app, secret)).status).toBe(200);

    // Key detail shows the requests just made.
    await page.locator('tr', { hasText: 'Deploy bot' }).getByRole('link', { name: 'Deploy bot', exact: true }).click();
    await page.getByRole('heading', { name: 'Recent requests' }).waitFor();
    // Two before the limit and one after raising it; the refused request never reached admission, so it has no event.
    expect(await page.locator('section[aria-labelledby="recent-title"] tbody tr').count()).toBe(3);
    await page.goto(`${app.url}/keys`);

    // Revoke through the confirmation page (the same one without JavaScript); the proxy refuses the key at once.
    await page.locator('tr', { hasText: 'Deploy bot' }).getByRole('link', { name: /Revoke/ }).click();
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await page.waitForURL(/done=revoked/);
    await page.locator('tr', { hasText: 'Deploy bot' }).getByText('Revoked').waitFor();
    const afterRevoke = await chat(app, secret);
    expect(afterRevoke.status).toBe(401);
    expect(afterRevoke.body.error.code).toBe('key_revoked');
    await browser.screenshot('keys');
    // The secret went through the browser, the portal and the proxy, and into no log line.
    expect(app.logs.join('')).not.toContain(secret);

    expect(browser.problems).toEqual([]);
  });

  it('filters the keys table in place and keeps the URL shareable', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys`);
    await page.getByLabel('Owner').selectOption({ label: 'Team: Platform' });
    await page.waitForURL(/owner=team/);
    await expect(page.locator('#keys-table').getByText('CI pipeline').isVisible()).resolves.toBe(true);
    await expect(page.locator('#keys-table').getByText('Weekend experiments').count()).resolves.toBe(0);
    expect(browser.problems).toEqual([]);
  });

  it('shows key detail, teams, usage, tokens and admin pages', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys`);
    await page.getByRole('link', { name: 'Claude Code – laptop', exact: true }).click();
    await page.getByRole('heading', { name: 'Daily spend' }).waitFor();
    await browser.screenshot('key-detail');

    await page.goto(`${app.url}/teams`);
    await page.getByRole('link', { name: 'Platform' }).first().click();
    await page.getByRole('heading', { name: 'Usage by member' }).waitFor();
    await browser.screenshot('team');

    await page.goto(`${app.url}/usage`);
    await browser.screenshot('usage');
    await page.goto(`${app.url}/tokens`);
    await browser.screenshot('tokens');
    // Run every job once so the status page shows real results (reconciliation included).
    const runner = new JobRunner({ db: app.t.db, clock, logger: app.deps.logger, metrics: app.deps.metrics });
    const jobs = createJobs(app.services);
    for (const name of JOB_NAMES) expect((await runner.run(jobs[name])).result).toBe('ok');
    for (const section of ['users', 'keys', 'balances', 'models', 'audit', 'jobs', 'plans']) {
      await page.goto(`${app.url}/admin/${section}`);
      await browser.screenshot(`admin-${section}`);
    }
    expect(browser.problems).toEqual([]);
  });

  it('adds a team member and changes a role without reloading the page', async () => {
    const { page } = browser;
    await makeUser(app.services, { email: 'dave@example.com' });
    await page.goto(`${app.url}/teams`);
    await page.getByRole('link', { name: 'Platform' }).first().click();
    await page.getByLabel('Add by e-mail').fill('dave@example.com');
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.locator('#team-members').getByText('dave@example.com', { exact: true }).waitFor();
    await page.getByLabel('Role of dave@example.com').selectOption('admin');
    await page.locator('tr', { hasText: 'dave@example.com' }).getByRole('button', { name: 'Save' }).click();
    await page.locator('#team-members').getByText('Role updated.').waitFor();
    // htmx followed the 303 and received only the members fragment, not a page inside the page.
    expect(await page.locator('header.topbar').count()).toBe(1);
    expect(await page.locator('#team-members').count()).toBe(1);
    await expect(page.locator('#member-count').textContent()).resolves.toBe('4');
    await browser.screenshot('team-after-changes');
    const team = (await app.services.teams.list({ userId: ada.user.id, role: 'admin', via: 'cli' }))[0]!;
    const members = (await app.services.teams.get(team.id, { userId: ada.user.id, role: 'admin', via: 'cli' })).members;
    expect(members.find((m) => m.email === 'dave@example.com')?.role).toBe('admin');
    expect(browser.problems).toEqual([]);
  });
});

describe.skipIf(!chromiumAvailable)('the portal without JavaScript', () => {
  let app: TestApp;
  let browser: Browser;
  let ada: TestUser;

  beforeAll(async () => {
    app = await startTestApp();
    ada = await makeUser(app.services, { email: 'nojs@example.com' });
    browser = await openBrowser({ javaScriptEnabled: false });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('creates a key with plain form posts and shows the secret once, uncacheable', async () => {
    const { page } = browser;
    await signIn(page, app.url, ada);
    await page.goto(`${app.url}/keys`);
    await page.getByLabel('Name').fill('No-JS key');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/keys')),
      page.getByRole('button', { name: 'Create key' }).click(),
    ]);
    expect(response.status()).toBe(201);
    expect(response.headers()['cache-control']).toBe('no-store');
    const secret = (await page.locator('#new-secret').textContent())!.trim();
    expect(secret).toMatch(/^mbk_/);
    // Every snippet is listed (no tabs without JavaScript), each carrying the key.
    await expect(page.locator('.snippet').count()).resolves.toBe(5);
    await browser.screenshot('show-once-nojs');

    // Revoke through the confirmation page.
    await page.goto(`${app.url}/keys`);
    await page.getByRole('link', { name: /Revoke No-JS key/ }).click();
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await page.waitForURL(/done=revoked/);
    await expect(page.locator('tr', { hasText: 'No-JS key' }).getByText('Revoked').isVisible()).resolves.toBe(true);
  });
});
