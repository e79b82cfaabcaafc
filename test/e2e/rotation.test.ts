import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { chromiumAvailable, openBrowser, signIn, type Browser } from './support/browser.js';

const DAY = 24 * 3600_000;

/** Rotate-by dates and scheduled rotation in a real browser, at desktop and phone widths. */
describe.skipIf(!chromiumAvailable)('rotation due in a real browser', () => {
  let app: TestApp;
  let clock: ManualClock;
  let ada: TestUser;
  let browser: Browser;
  let dueId: string;

  beforeAll(async () => {
    clock = new ManualClock(new Date(Date.now() - 25 * DAY));
    app = await startTestApp({ clock, env: { MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    ada = await makeUser(app.services, { email: 'ada@example.com' });
    const team = await makeTeam(app.services, ada, { name: 'Platform' });
    await app.services.keyPolicy.setTeam(team.id, { maxKeyAgeDays: 30 }, ada.actor);
    await app.services.webhooks.create({ url: 'http://127.0.0.1:9/hooks', events: ['key.rotated_secret'], teamId: team.id }, ada.actor);
    dueId = (await app.services.keys.create({ name: 'CI deploys', teamId: team.id, autoRotate: true, spendLimitMicro: 20_000_000 }, ada.actor)).key.id;
    clock.advance(20 * DAY);
    await makeKey(app.services, ada, { name: 'Platform bot', teamId: team.id });
    await makeKey(app.services, ada, { name: 'My laptop' });
    clock.advance(5 * DAY);
    browser = await openBrowser();
    await signIn(browser.page, app.url, ada);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  for (const width of [1280, 390]) {
    it(`shows rotate-by on the dashboard, the key list and the key page (${width} px)`, async () => {
      const { page } = browser;
      await page.setViewportSize({ width, height: 860 });
      await page.goto(`${app.url}/`);
      await expect.poll(() => page.getByText(/Rotation due in 5 days \(automatic\)/).count()).toBe(1);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await browser.screenshot(`rotation-dashboard-${width}`);
      await page.goto(`${app.url}/keys`);
      expect(await page.getByText(/Rotate by/).count()).toBe(1);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await browser.screenshot(`rotation-keys-${width}`);
      await page.goto(`${app.url}/keys/${dueId}`);
      expect(await page.locator('#rotation').textContent()).toContain('Scheduled rotation is on');
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await browser.screenshot(`rotation-key-${width}`);
    });
  }
});
