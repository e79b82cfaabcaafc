import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { insertUsageEvent } from '../support/trpc.js';
import { chromiumAvailable, htmxIdle, openBrowser, type Browser } from './support/browser.js';

async function signIn(page: Page, app: TestApp, user: TestUser): Promise<void> {
  await page.goto(`${app.url}/login`);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${app.url}/`);
}

const pageWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth);

/** Issue #15, points 12–14 in a real browser: team invitations end to end, the audit log, installation usage. */
describe.skipIf(!chromiumAvailable)('issue #15: invitations, the audit log and installation usage in the browser', () => {
  let app: TestApp;
  let ada: TestUser;
  let browser: Browser;
  let teamId: string;

  beforeAll(async () => {
    app = await startTestApp();
    const s = app.services;
    ada = await makeUser(s, { admin: true, email: 'ada@example.com' });
    const bob = await makeUser(s, { email: 'bob@example.com' });
    teamId = (await makeTeam(s, ada, { name: 'Platform', balanceMicro: 50_000_000, members: [[bob, 'member']] })).id;
    const laptop = (await makeKey(s, ada, { name: 'Laptop', spendLimitMicro: 5_000_000 })).key;
    const ci = (await makeKey(s, bob, { name: 'CI runner', teamId })).key;
    const now = s.clock.now().getTime();
    for (let day = 0; day < 6; day++) {
      await insertUsageEvent(app, laptop, { model: 'gpt-4o-mini', costMicro: 120_000 * (day + 1), at: new Date(now - day * 86_400_000) });
      await insertUsageEvent(app, ci, { model: 'claude-sonnet-4-5', provider: 'anthropic', costMicro: 450_000, at: new Date(now - day * 86_400_000) });
    }
    await s.keys.revoke(laptop.id, ada.actor);
    browser = await openBrowser();
    await signIn(browser.page, app, ada);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('an owner invites by e-mail, sees the link once; a second browser creates the account from it and joins', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/teams/${teamId}`);
    await page.getByLabel('Invite by e-mail').fill('cleo@example.com');
    await page.getByLabel('Role', { exact: true }).last().selectOption('viewer');
    await page.getByRole('button', { name: 'Create invitation link' }).click();
    const link = page.locator('#invite-link');
    await link.waitFor();
    const url = (await link.textContent())!.trim();
    expect(url).toMatch(new RegExp(`^${app.url}/invite/[A-Za-z0-9_-]{43}$`));
    // The address bar is the team page again (not the POST), and reloading does not show the link a second time.
    expect(new URL(page.url()).pathname).toBe(`/teams/${teamId}`);
    await browser.screenshot('invite-link-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await browser.screenshot('invite-link-390');
    expect(await pageWidth(page)).toBeLessThanOrEqual(390);
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.reload();
    await expect(page.locator('#invite-link').count()).resolves.toBe(0);
    await expect(page.locator('#team-invites').getByText('cleo@example.com').count()).resolves.toBe(1);

    const guest = await openBrowser();
    try {
      for (const width of [1280, 390]) {
        await guest.page.setViewportSize({ width, height: width === 390 ? 844 : 860 });
        await guest.page.goto(url);
        await expect(guest.page.getByRole('heading', { name: 'Join Platform' }).count()).resolves.toBe(1);
        expect(await pageWidth(guest.page), `invite page at ${width}`).toBeLessThanOrEqual(width);
        await guest.screenshot(`invite-accept-${width}`);
      }
      await expect(guest.page.getByLabel('E-mail').inputValue()).resolves.toBe('cleo@example.com');
      await guest.page.getByLabel('Name').fill('Cleo');
      await guest.page.getByLabel('Password').fill('a long enough passphrase');
      await guest.page.getByRole('button', { name: 'Create account and join' }).click();
      await guest.page.waitForURL(/\/teams\?done=invite_accepted/);
      await expect(guest.page.getByRole('link', { name: 'Platform' }).count()).resolves.toBeGreaterThan(0);
      await guest.page.goto(url);
      await expect(guest.page.getByText('already been used').count()).resolves.toBe(1);
      await guest.screenshot('invite-used-390');
      // The used link's page answers 410 Gone, which Chromium logs; nothing else may show up.
      expect(guest.problems.filter((p) => !p.includes('status of 410'))).toEqual([]);
    } finally {
      await guest.close();
    }
    const team = await app.services.teams.get(teamId, ada.actor);
    expect(team.members.find((m) => m.email === 'cleo@example.com')?.role).toBe('viewer');
    expect(browser.problems).toEqual([]);
  });

  it('the audit log reads as sentences with links, and its filters apply on change', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/admin/audit`);
    const entries = page.locator('.audit-entry');
    await expect(entries.filter({ hasText: 'accepted the invitation to Platform' }).count()).resolves.toBe(1);
    const revoked = entries.filter({ hasText: 'revoked the key' }).first();
    await expect(revoked.locator('a', { hasText: 'Laptop' }).getAttribute('href')).resolves.toMatch(/^\/keys\//);
    await expect(page.locator('main').getByText('null').count()).resolves.toBe(0);
    await page.locator('#a-action').selectOption('team.invite_create');
    await page.waitForURL(/action=team.invite_create/);
    await expect(entries.count()).resolves.toBe(1);
    await expect(entries.first().textContent()).resolves.toContain('invited cleo@example.com to Platform as a viewer');
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width === 390 ? 844 : 860 });
      await page.goto(`${app.url}/admin/audit`);
      expect(await pageWidth(page), `audit at ${width}`).toBeLessThanOrEqual(width);
      await browser.screenshot(`audit-sentences-${width}`);
    }
    await page.setViewportSize({ width: 1280, height: 860 });
    expect(browser.problems).toEqual([]);
  });

  it('installation usage shows the totals, the chart and the breakdowns, and the period applies on change', async () => {
    const { page } = browser;
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width === 390 ? 844 : 860 });
      await page.goto(`${app.url}/admin/usage`);
      await expect(page.locator('figure.chart-figure svg.chart').count()).resolves.toBeGreaterThan(0);
      await expect(page.locator('section[aria-labelledby="by-provider-title"]').getByText('anthropic').count()).resolves.toBe(1);
      await expect(page.locator('section[aria-labelledby="by-team-title"]').getByRole('link', { name: 'Platform' }).count()).resolves.toBe(1);
      expect(await pageWidth(page), `usage at ${width}`).toBeLessThanOrEqual(width);
      await browser.screenshot(`admin-usage-${width}`);
    }
    await page.setViewportSize({ width: 1280, height: 860 });
    const from = page.locator('#iu-from');
    await from.fill('2020-01-01');
    await from.dispatchEvent('change');
    await page.waitForURL(/from=2020-01-01/);
    await htmxIdle(page);
    await expect(page.locator('[data-range-error]').textContent()).resolves.toContain('at most 366 days');
    await expect(page.getByRole('link', { name: 'Export CSV' }).count()).resolves.toBe(0);
    await page.goto(`${app.url}/admin/usage`);
    const csv = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    const res = await page.request.get(`${app.url}${csv}`);
    expect(res.status()).toBe(200);
    // The default period is this billing month: at most the six days of traffic above.
    expect(await res.text()).toMatch(/\r\nprovider,anthropic,anthropic,[1-6],/);
    // The refused period answers 400, which Chromium logs; nothing else may show up.
    expect(browser.problems.filter((p) => !p.includes('status of 400'))).toEqual([]);
  });
});
