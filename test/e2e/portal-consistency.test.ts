import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { chromiumAvailable, htmxIdle, openBrowser, type Browser } from './support/browser.js';

/**
 * Issue #15 points 4, 9 and 15: the phone navigation, Australian dates, no POST target left in the address bar,
 * the add-member form, one confirmation pattern and one filter behaviour — with and without JavaScript.
 */

async function signIn(page: Page, app: TestApp, user: TestUser): Promise<void> {
  await page.goto(`${app.url}/login`);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${app.url}/`);
}

/** Links of a navigation that are not fully inside the viewport (hidden in a scroller, or off-screen). */
function linksOutsideViewport(page: Page, selector: string): Promise<string[]> {
  return page.evaluate((sel) => {
    const vw = document.documentElement.clientWidth;
    return [...document.querySelectorAll<HTMLElement>(`${sel} a`)]
      .filter((a) => {
        const r = a.getBoundingClientRect();
        return r.left < 0 || r.right > vw || r.width === 0;
      })
      .map((a) => (a.textContent ?? '').trim());
  }, selector);
}

describe.skipIf(!chromiumAvailable)('issue #15: one way to confirm, one way to filter, phone navigation, Australian dates', () => {
  let app: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let teamId: string;
  let browser: Browser;

  beforeAll(async () => {
    app = await startTestApp();
    const s = app.services;
    ada = await makeUser(s, { admin: true, email: 'ada@example.com', prepaidMicro: 10_000_000 });
    bob = await makeUser(s, { email: 'bob@example.com' });
    carol = await makeUser(s, { email: 'carol@example.com' });
    const team = await makeTeam(s, ada, { name: 'Platform', members: [[bob, 'member'], [carol, 'member']] });
    teamId = team.id;
    await makeKey(s, ada, { name: 'Laptop' });
    await makeKey(s, ada, { name: 'CI nightly', teamId });
    await makeKey(s, bob, { name: 'Bob laptop' });
    await s.tokens.create({ name: 'Deploy script' }, ada.actor);
    browser = await openBrowser();
    await signIn(browser.page, app, ada);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('at 390 px every main and admin section is on screen (the bars wrap), and the signed-in address is readable', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const path of ['/keys', '/admin/users', '/admin/audit']) {
        await page.goto(`${app.url}${path}`);
        expect(await linksOutsideViewport(page, '.topbar .nav'), path).toEqual([]);
        if (path.startsWith('/admin')) expect(await linksOutsideViewport(page, '.subnav'), path).toEqual([]);
        expect(await page.evaluate(() => document.scrollingElement!.scrollWidth), path).toBeLessThanOrEqual(390);
      }
      // Indigo on the #111827 bar is unreadable; the address takes the bar's light text colour.
      const colour = await page.locator('.account a').evaluate((a) => getComputedStyle(a).color);
      expect(colour).toBe('rgb(199, 204, 214)');
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
  });

  it('speaks Australian English: lang="en-AU" on every page, dates shown day-first', async () => {
    const { page } = browser;
    for (const path of ['/', '/keys', '/tokens', '/admin/audit']) {
      await page.goto(`${app.url}${path}`);
      await expect(page.locator('html').getAttribute('lang'), path).resolves.toBe('en-AU');
    }
    const anon = await openBrowser();
    try {
      await anon.page.goto(`${app.url}/login`);
      await expect(anon.page.locator('html').getAttribute('lang')).resolves.toBe('en-AU');
    } finally {
      await anon.close();
    }
    await page.goto(`${app.url}/admin/users`);
    const joined = await page.locator('tr', { hasText: 'bob@example.com' }).locator('td.nowrap').textContent();
    expect(joined?.trim()).toMatch(/^\d{1,2} [A-Z][a-z]{2} \d{4}$/);
  });

  it('after a refused form the address is the page it came from, and a reload sends nothing again', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/admin/balances`);
    await page.locator('#t-target').selectOption({ index: 1 });
    await page.locator('#t-amount').fill('lots');
    await page.locator('form[action="/admin/credit"] button[type="submit"]').click();
    await page.locator('.alert-error').waitFor();
    expect(new URL(page.url()).pathname).toBe('/admin/balances');
    const [reload] = await Promise.all([page.waitForRequest((r) => r.isNavigationRequest()), page.reload()]);
    expect(reload.method()).toBe('GET');
    await expect(page.locator('.alert-error').count()).resolves.toBe(0);

    // Creating a key answers the POST with the show-once page: a reload must not create a second key.
    await page.goto(`${app.url}/keys?status=active`);
    await page.locator('#key-name').fill('Made once');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-secret').waitFor();
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe('/keys?status=active');
    await page.reload();
    const made = (await app.services.keys.list({}, ada.actor)).filter((k) => k.name === 'Made once');
    expect(made).toHaveLength(1);
    // The refused top-up answered 400, which Chromium logs as a failed resource; nothing else may be there.
    expect(browser.problems.filter((p) => !p.includes('status of 400'))).toEqual([]);
    browser.problems.length = 0;
  });

  it('the add-member e-mail field has room for an address at 1280 and 390 px, and the members table fits its card', async () => {
    const { page } = browser;
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 860 });
      await page.goto(`${app.url}/teams/${teamId}`);
      const field = await page.locator('#member-email').boundingBox();
      expect(field!.width, `${width} px`).toBeGreaterThanOrEqual(240);
      if (width === 1280) {
        const wrap = await page.locator('#team-members .table-wrap').evaluate((w) => ({ scroll: w.scrollWidth, client: w.clientWidth }));
        expect(wrap.scroll, 'members table scrolls at 1280 px').toBeLessThanOrEqual(wrap.client);
      }
    }
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  for (const javaScriptEnabled of [true, false]) {
    const mode = javaScriptEnabled ? 'with' : 'without';
    it(`one confirmation page for every destructive action, ${mode} JavaScript (no browser confirm())`, async () => {
      const b = javaScriptEnabled ? browser : await openBrowser({ javaScriptEnabled: false });
      const { page } = b;
      let dialogs = 0;
      page.on('dialog', (d) => {
        dialogs++;
        void d.dismiss();
      });
      try {
        if (!javaScriptEnabled) await signIn(page, app, ada);
        const keyName = `Revoke me ${mode} JS`;
        const { key } = await makeKey(app.services, ada, { name: keyName });
        const cases: Array<{ start: string; link: RegExp; button: string; check: () => Promise<boolean> }> = [
          {
            start: '/keys',
            link: new RegExp(`^Revoke ${keyName}$`),
            button: 'Revoke key',
            check: async () => (await app.services.keys.get(key.id, ada.actor)).status === 'revoked',
          },
          {
            start: '/admin/users',
            link: javaScriptEnabled ? /^Disable bob@example\.com$/ : /^Disable carol@example\.com$/,
            button: 'Disable user',
            check: async () => (await app.services.users.get((javaScriptEnabled ? bob : carol).user.id))!.disabled,
          },
          {
            start: `/teams/${teamId}`,
            link: javaScriptEnabled ? /^Remove bob@example\.com$/ : /^Remove carol@example\.com$/,
            button: 'Remove member',
            check: async () => !(await app.services.teams.get(teamId, ada.actor)).members.some((m) => m.userId === (javaScriptEnabled ? bob : carol).user.id),
          },
        ];
        if (javaScriptEnabled) {
          const token = (await app.services.tokens.list(ada.actor)).find((t) => t.name === 'Deploy script')!;
          cases.push({
            start: '/tokens',
            link: /^Revoke$/,
            button: 'Revoke token',
            check: async () => (await app.services.tokens.list(ada.actor)).find((t) => t.id === token.id)!.status !== 'active',
          });
        }
        for (const c of cases) {
          await page.goto(`${app.url}${c.start}`);
          await page.getByRole('link', { name: c.link }).first().click();
          await page.locator('[data-confirm]').waitFor();
          // Cancel first: nothing changes.
          await expect(c.check(), `${c.button}: changed before confirming`).resolves.toBe(false);
          await page.getByRole('button', { name: c.button }).click();
          await page.waitForURL(/done=/);
          await expect(c.check(), c.button).resolves.toBe(true);
        }
        expect(dialogs).toBe(0);
        expect(b.problems).toEqual([]);
      } finally {
        if (!javaScriptEnabled) await b.close();
      }
    });

    it(`every filter behaves the same ${mode} JavaScript: ${javaScriptEnabled ? 'applied on change, no button' : 'an Apply button'}`, async () => {
      const b = javaScriptEnabled ? browser : await openBrowser({ javaScriptEnabled: false });
      const { page } = b;
      try {
        if (!javaScriptEnabled) await signIn(page, app, ada);
        const filters: Array<[string, string, string, RegExp]> = [
          ['/keys', '#filter-status', 'revoked', /status=revoked/],
          ['/usage', '#f-key', 'first', /key=/],
          ['/admin/keys', '#ak-status', 'revoked', /status=revoked/],
          ['/admin/audit', '#a-type', 'key', /type=key/],
          ['/admin/audit', '#a-action', 'key.create', /action=key.create/],
        ];
        for (const [path, select, value, expected] of filters) {
          await page.goto(`${app.url}${path}`);
          const form = page.locator('form[data-filter]');
          await expect(form.count(), path).resolves.toBe(1);
          const button = form.getByRole('button', { name: 'Apply' });
          await expect(button.isVisible(), `${path}: Apply button`).resolves.toBe(!javaScriptEnabled);
          if (value === 'first') await page.locator(select).selectOption({ index: 1 });
          else await page.locator(select).selectOption(value);
          if (!javaScriptEnabled) await button.click();
          await page.waitForURL(expected);
          if (javaScriptEnabled) await htmxIdle(page);
          await expect(page.locator(select).inputValue(), path).resolves.not.toBe('');
        }
        expect(b.problems).toEqual([]);
      } finally {
        if (!javaScriptEnabled) await b.close();
      }
    });
  }
});
