import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { chromiumAvailable, htmxIdle, openBrowser, type Browser } from './support/browser.js';

/** Every page of the portal a signed-in admin can open (issue #15: each at 1280 and 390 px). */
function pages(ids: { teamId: string; keyId: string }): Array<[string, string]> {
  return [
    ['dashboard', '/'], ['keys', '/keys'], ['key', `/keys/${ids.keyId}`], ['key-limit', `/keys/${ids.keyId}/limit`],
    ['key-rotate', `/keys/${ids.keyId}/rotate`], ['key-revoke', `/keys/${ids.keyId}/revoke`], ['teams', '/teams'],
    ['team', `/teams/${ids.teamId}`], ['usage', '/usage'], ['tokens', '/tokens'], ['admin-users', '/admin/users'],
    ['admin-keys', '/admin/keys'], ['admin-key-policy', '/admin/key-policy'], ['admin-usage', '/admin/usage'], ['admin-balances', '/admin/balances'], ['admin-plans', '/admin/plans'],
    ['admin-models', '/admin/models'], ['admin-audit', '/admin/audit'], ['admin-jobs', '/admin/jobs'],
  ];
}

async function signIn(page: Page, app: TestApp, user: TestUser): Promise<void> {
  await page.goto(`${app.url}/login`);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${app.url}/`);
}

/** Actions that are neither in the viewport nor inside a horizontal scroll container that is itself in it. */
function unreachableActions(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const out: string[] = [];
    const actions = document.querySelectorAll<HTMLElement>('main button, main a.btn, main input[type=submit], header a, header button');
    for (const el of actions) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue; // not rendered (hidden tab, sr-only)
      let scroller: HTMLElement | null = el.parentElement;
      while (scroller && !['auto', 'scroll'].includes(getComputedStyle(scroller).overflowX)) scroller = scroller.parentElement;
      const box = scroller ? scroller.getBoundingClientRect() : { left: 0, right: vw };
      const inBox = r.left >= box.left - 1 && r.right <= box.right + 1;
      const boxInView = box.left >= -1 && box.right <= vw + 1;
      if (scroller ? !boxInView : !inBox) out.push(`${el.tagName} "${(el.textContent ?? '').trim().slice(0, 30)}" at ${Math.round(r.left)}..${Math.round(r.right)}`);
      // Inside a scroll container it can be scrolled to; outside one it must be on screen.
      if (!scroller && r.right > vw + 1) out.push(`${el.tagName} "${(el.textContent ?? '').trim().slice(0, 30)}" off-screen`);
    }
    return out;
  });
}

describe.skipIf(!chromiumAvailable)('issue #15: the portal as a team lives in it', () => {
  let app: TestApp;
  let ada: TestUser;
  let browser: Browser;
  let teamId: string;
  let retiringId: string;
  let successorId: string;
  let plainKeyId: string;

  beforeAll(async () => {
    // No provider keys: both providers are answered by the demo upstream, which the portal must say.
    app = await startTestApp();
    const s = app.services;
    ada = await makeUser(s, { admin: true, email: 'ada@example.com', prepaidMicro: 10_000_000 });
    const bob = await makeUser(s, { email: 'bob@example.com' });
    const team = await makeTeam(s, ada, { name: 'Platform', balanceMicro: 50_000_000, members: [[bob, 'member']] });
    teamId = team.id;
    const plain = await makeKey(s, ada, { name: 'Laptop', spendLimitMicro: 5_000_000 });
    plainKeyId = plain.key.id;
    // A little traffic through the demo upstream, so the charts have bars.
    for (let i = 0; i < 3; i++) {
      await fetch(`${app.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${plain.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] }),
      });
    }
    await makeKey(s, ada, { name: 'A key with a rather long descriptive name for the CI pipeline', teamId: team.id });
    const old = await makeKey(s, ada, { name: 'Deploy bot' });
    const rotated = await s.keys.rotate(old.key.id, 86_400, ada.actor);
    retiringId = old.key.id;
    successorId = rotated.key.id;
    browser = await openBrowser();
    await signIn(browser.page, app, ada);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('the team page’s "Create a team key" opens the form on that team, and the key is the team’s', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/teams/${teamId}`);
    await page.getByRole('link', { name: 'Create a team key' }).click();
    await expect(page.locator('#key-owner').inputValue()).resolves.toBe(teamId);
    await page.locator('#key-name').fill('Made from the team page');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#new-secret').waitFor();
    const made = (await app.services.keys.list({ teamId }, ada.actor)).find((k) => k.name === 'Made from the team page');
    expect(made?.teamId).toBe(teamId);
  });

  it('create-key errors mark each bad field with its own message, all at once', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys`);
    await page.locator('#key-name').fill('Fine name');
    await page.getByLabel(/Spending limit/).fill('lots');
    await page.getByLabel(/Expires after/).fill('2020-01-01');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#key-limit-error').waitFor();
    await htmxIdle(page);
    await expect(page.locator('#key-name').getAttribute('aria-invalid')).resolves.toBeNull();
    await expect(page.locator('#key-limit').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#key-expires').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#key-limit-error').textContent()).resolves.toContain('spending limit');
    await expect(page.locator('#key-expires-error').textContent()).resolves.toContain('future');
    await browser.screenshot('issue15-create-errors');

    await page.locator('#key-name').fill('   ');
    await page.getByLabel(/Spending limit/).fill('10');
    await page.getByLabel(/Expires after/).fill('');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('#key-name-error').waitFor();
    await expect(page.locator('#key-name').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#key-limit').getAttribute('aria-invalid')).resolves.toBeNull();
    await expect(page.locator('.field-error').count()).resolves.toBe(1);
  });

  it('a rotated key in its grace period shows as retiring (when, and its successor), with no second rotation', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys`);
    const row = page.locator(`#key-${retiringId}`);
    await expect(row.locator('.badge').textContent()).resolves.toBe('Retiring');
    await expect(row.getByText(/Retires in/).count()).resolves.toBe(1);
    await expect(row.getByText('No expiry').count()).resolves.toBe(0);
    await expect(row.getByRole('link', { name: /^Rotate/ }).count()).resolves.toBe(0);
    await expect(page.locator(`#key-${successorId}`).getByRole('link', { name: /^Rotate/ }).count()).resolves.toBe(1);

    await page.goto(`${app.url}/keys/${retiringId}`);
    const main = page.locator('main');
    await expect(main.getByText('never expires').count()).resolves.toBe(0);
    await expect(main.getByText(/keeps working until/).count()).resolves.toBe(1);
    await expect(main.locator(`a[href="/keys/${successorId}"]`).count()).resolves.toBe(1);
    await expect(main.getByRole('link', { name: 'Rotate', exact: true }).count()).resolves.toBe(0);
    await page.goto(`${app.url}/keys/${retiringId}/rotate`);
    expect(new URL(page.url()).pathname).toBe(`/keys/${retiringId}`);

    await page.goto(`${app.url}/`);
    const attention = page.locator('section[aria-labelledby="attention-title"]');
    await expect(attention.getByText('Deploy bot').count()).resolves.toBe(1);
    await expect(attention.getByText(/retires in/).count()).resolves.toBe(1);
  });

  it('the key page shows the set-up snippets again, with a placeholder for the key', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys/${plainKeyId}`);
    const code = await page.locator('#code-curl').textContent();
    expect(code).toContain(`${app.url}/v1/chat/completions`);
    const key = await app.services.keys.get(plainKeyId, ada.actor);
    expect(code).toContain(`mbk_YOUR_KEY_${key.last4}`);
    await expect(page.locator('.snippet').count()).resolves.toBeGreaterThanOrEqual(3);
  });

  it('the demo upstream is announced on every page while it serves, and on the Models page', async () => {
    const { page } = browser;
    for (const [name, path] of pages({ teamId, keyId: plainKeyId })) {
      await page.goto(`${app.url}${path}`);
      await expect(page.locator('[data-demo-banner]').count(), name).resolves.toBe(1);
    }
    await page.goto(`${app.url}/admin/models`);
    await expect(page.locator('[data-demo-models]').textContent()).resolves.toContain('OPENAI_API_KEY');
  });

  it('keyboard focus is visible in the top bar and on the page (a solid ring, not a faint shadow)', async () => {
    const { page } = browser;
    await page.goto(`${app.url}/keys`);
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab'); // brand
    await page.keyboard.press('Tab'); // first nav link
    const ring = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const s = getComputedStyle(el);
      return { inTopbar: !!el.closest('.topbar'), style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor };
    });
    expect(ring.inTopbar).toBe(true);
    expect(ring.style).toBe('solid');
    expect(ring.width).toBeGreaterThanOrEqual(2);
    // Against the #111827 bar: a light ring (amber), not the indigo that vanishes on it.
    expect(ring.color).toBe('rgb(251, 191, 36)');
    await page.locator('#key-name').focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    const field = await page.evaluate(() => getComputedStyle(document.activeElement as HTMLElement).outlineStyle);
    expect(field).toBe('solid');
  });

  for (const width of [1280, 390]) {
    it(`charts are readable at ${width} px: axis text at least 10 px, labels not cut, exact values on request`, async () => {
      const { page } = browser;
      await page.setViewportSize({ width, height: 860 });
      await page.goto(`${app.url}/keys/${plainKeyId}`);
      const figure = page.locator('figure.chart-figure').first();
      const text = await figure.evaluate((fig) => {
        const svg = [...fig.querySelectorAll('svg.chart')].find((s) => s.getBoundingClientRect().width > 0)!;
        const box = svg.getBoundingClientRect();
        const labels = [...svg.querySelectorAll('text.chart-axis')].map((t) => t.getBoundingClientRect());
        return { minHeight: Math.min(...labels.map((l) => l.height)), minLeft: Math.min(...labels.map((l) => l.left)) - box.left };
      });
      await page.setViewportSize({ width: 1280, height: 860 });
      expect(text.minHeight).toBeGreaterThanOrEqual(10);
      expect(text.minLeft).toBeGreaterThanOrEqual(0);
      await page.setViewportSize({ width, height: 860 });
      await figure.getByText('Exact values').click();
      await expect(figure.locator('details table tbody tr').count()).resolves.toBe(30);
      await page.setViewportSize({ width: 1280, height: 860 });
    });

    it(`no page is wider than the viewport at ${width} px and every action can be reached (screenshots)`, async () => {
      const { page } = browser;
      await page.setViewportSize({ width, height: width === 390 ? 844 : 860 });
      const problems: string[] = [];
      for (const [name, path] of pages({ teamId, keyId: plainKeyId })) {
        await page.goto(`${app.url}${path}`);
        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        if (scrollWidth > width) problems.push(`${name}: ${scrollWidth} px wide`);
        for (const p of await unreachableActions(page)) problems.push(`${name}: ${p}`);
        await browser.screenshot(`${name}-${width}`);
      }
      await page.setViewportSize({ width: 1280, height: 860 });
      expect(problems).toEqual([]);
    });
  }
});
