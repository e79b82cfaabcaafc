import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeUser, type TestUser } from '../support/factories.js';
import { chromiumAvailable, openBrowser, type Browser } from './support/browser.js';

const NEW_PASSWORD = 'correct horse battery staple';

/** Passwords (change, admin reset link) and a key's refused requests, in a real browser at desktop and phone widths. */
describe.skipIf(!chromiumAvailable)('account pages in a real browser', () => {
  let app: TestApp;
  let admin: TestUser;
  let grace: TestUser;
  let browser: Browser;
  let keyId: string;

  beforeAll(async () => {
    app = await startTestApp();
    admin = await makeUser(app.services, { admin: true, email: 'root@example.com' });
    grace = await makeUser(app.services, { email: 'grace@example.com' });
    const { key, secret } = await makeKey(app.services, grace, { name: 'Old laptop' });
    keyId = key.id;
    await app.services.keys.revoke(key.id, grace.actor);
    for (let i = 0; i < 30; i++) {
      await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      }).then((r) => r.arrayBuffer());
    }
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function signInAs(email: string, password: string) {
    const { page } = browser;
    await browser.context.clearCookies();
    await page.goto(`${app.url}/login`);
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${app.url}/`);
  }

  for (const width of [1280, 390]) {
    it(`an admin's reset link lets the user choose a new password, then change it (${width} px)`, async () => {
      const { page } = browser;
      await page.setViewportSize({ width, height: 860 });
      const before = width === 1280 ? grace.password : NEW_PASSWORD;
      const after = width === 1280 ? NEW_PASSWORD : `${NEW_PASSWORD} again`;

      await signInAs(admin.email, admin.password);
      await page.goto(`${app.url}/admin/users`);
      await page.getByRole('button', { name: `Password reset link for ${grace.email}` }).click();
      const link = (await page.locator('#reset-link').textContent())!.trim();
      expect(link).toMatch(/\/reset\/[0-9A-Za-z]{32}$/);
      await browser.screenshot(`account-reset-link-${width}`);

      await browser.context.clearCookies();
      await page.goto(link);
      await expect(page.getByText(grace.email).isVisible()).resolves.toBe(true);
      await browser.screenshot(`account-reset-${width}`);
      await page.getByLabel('New password').fill(`reset ${after}`);
      await page.getByRole('button', { name: 'Set password' }).click();
      await page.waitForURL(/\/login\?done=password_reset$/);
      expect(before).not.toBe(`reset ${after}`);

      await signInAs(grace.email, `reset ${after}`);
      await page.getByRole('link', { name: grace.email }).click();
      await page.waitForURL(`${app.url}/account/password`);
      await page.getByLabel('Current password').fill(`reset ${after}`);
      await page.getByLabel('New password').fill(after);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.waitForURL(/done=password_changed/);
      await expect(page.getByText('Password changed.').isVisible()).resolves.toBe(true);
      await browser.screenshot(`account-password-${width}`);

      await page.goto(`${app.url}/keys/${keyId}`);
      await expect(page.getByRole('heading', { name: 'Refused requests' }).isVisible()).resolves.toBe(true);
      await expect(page.getByRole('cell', { name: 'key_revoked' }).first().isVisible()).resolves.toBe(true);
      await browser.screenshot(`key-refusals-${width}`);
      expect(browser.problems).toEqual([]);
    });
  }
});
