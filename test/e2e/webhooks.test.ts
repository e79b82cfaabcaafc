import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { startReceiver } from '../support/webhook-receiver.js';
import { chromiumAvailable, openBrowser, signIn, type Browser } from './support/browser.js';

/** The Webhooks page in a real browser at desktop and phone widths: create (secret once), test, deliveries, delete. */
describe.skipIf(!chromiumAvailable)('webhooks page in a real browser', () => {
  let app: TestApp;
  let ada: TestUser;
  let browser: Browser;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    app = await startTestApp({ env: { MODELBRIDGE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    receiver = await startReceiver();
    ada = await makeUser(app.services, { email: 'ada@example.com' });
    await makeTeam(app.services, ada, { name: 'Platform' });
    browser = await openBrowser();
    await signIn(browser.page, app.url, ada);
  });
  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await app?.close();
  });

  for (const width of [1280, 390]) {
    it(`creates a webhook, shows its secret once, sends a test and lists the delivery (${width} px)`, async () => {
      const { page } = browser;
      await page.setViewportSize({ width, height: 860 });
      await page.goto(`${app.url}/account/alerts`);
      await page.getByRole('link', { name: 'webhook' }).click();
      await page.waitForURL(`${app.url}/webhooks`);
      await page.getByLabel('URL').fill(`${receiver.url}?w=${width}`);
      await page.getByLabel('key.revoked').check();
      await page.getByLabel('key.limit_reached').check();
      await page.getByRole('button', { name: 'Add webhook' }).click();
      const secret = (await page.locator('#new-webhook-secret').textContent())!.trim();
      expect(secret).toMatch(/^whsec_/);
      receiver.state.secret = secret;
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await browser.screenshot(`webhooks-created-${width}`);

      await page.goto(`${app.url}/webhooks`);
      expect(await page.content()).not.toContain(secret);
      await page.getByRole('link', { name: `${receiver.url}?w=${width}` }).click();
      await page.getByRole('button', { name: 'Send test' }).click();
      await expect.poll(() => page.getByText('A test event was queued').count()).toBe(1);
      await app.services.webhookDelivery.deliverDue();
      await page.reload();
      const row = page.getByRole('row', { name: /webhook\.test/ });
      await expect.poll(() => row.textContent()).toMatch(/delivered\s*1\s*HTTP 200/);
      expect(receiver.accepted().filter((r) => r.path.includes(`w=${width}`)).every((r) => r.signatureOk)).toBe(true);
      await browser.screenshot(`webhooks-deliveries-${width}`);

      await page.getByRole('link', { name: 'Delete' }).click();
      await page.getByRole('button', { name: 'Delete webhook' }).click();
      await page.waitForURL(/\/webhooks\?done=webhook_deleted/);
      expect(await page.getByRole('link', { name: `${receiver.url}?w=${width}` }).count()).toBe(0);
    });
  }

  it('offers the teams the user manages', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/webhooks`);
    expect(await page.getByLabel('For').locator('option').allTextContents()).toEqual(['My own keys and balance', 'Team Platform']);
  });
});
