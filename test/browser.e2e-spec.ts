import { Browser } from 'playwright-core';
import { api, startTestApp, TestApp, waitFor } from './support/app';
import { launchChromium, watchErrors } from './support/chromium';

const OPS_TOKEN = 'ops-token-0123456789abcdef';

/**
 * The web demo and Swagger UI in a real headless Chromium, under the gateway's security headers:
 * nothing they load may be blocked by the Content-Security-Policy.
 */
describe('web demo in headless Chromium', () => {
  let gw: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    // Loopback with real keys: the demo is on, and hands the page the key only when asked to.
    gw = await startTestApp({ HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_MIN_MS: '500', DEMO_SHARE_API_KEY: 'true', OPS_TOKEN });
    browser = await launchChromium();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('connects, shows its heartbeat, and shows a notification sent through REST and one sent from its form', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    watchErrors(page, errors);
    const response = await page.goto(`${gw.url}/demo`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.waitForSelector('#state.online', { timeout: 10_000 });
    const deviceId = (await page.textContent('#device'))!;
    expect(deviceId).toBe('demo-device'); // the device npm start's curl and the README's target
    // Polled from here: a string evaluated in the page is an eval, which the CSP rightly refuses.
    await waitFor(async () => Number(await page.textContent('#beats')) >= 1);
    expect(await page.textContent('#interval')).toMatch(/^\d+ ms$/);

    const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: [deviceId], title: 'From the test', data: { n: 42 } } });
    const { id } = (await res.json()) as { id: string };
    const item = page.locator(`li.notification[data-id="${id}"]`);
    await item.waitFor({ timeout: 5_000 });
    expect(await item.textContent()).toContain('From the test');

    await page.fill('#title', 'From the form');
    await page.click('#send button');
    await page.locator('li.notification', { hasText: 'From the form' }).waitFor({ timeout: 5_000 });
    expect(await page.textContent('#sendResult')).toMatch(/^202 /);

    await page.screenshot({ path: '/tmp/push-gateway-demo.png' });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows Swagger UI to an operator who sends OPS_TOKEN', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${OPS_TOKEN}` } });
    const page = await context.newPage();
    const errors: string[] = [];
    watchErrors(page, errors);
    const response = await page.goto(`${gw.url}/docs`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('.swagger-ui .info .title', { hasText: 'push-gateway' }).waitFor({ timeout: 10_000 });
    await page.locator('.opblock-summary-path', { hasText: '/v1/notifications' }).first().waitFor({ timeout: 5_000 });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('keeps the demo off in production unless asked', async () => {
    const prod = await startTestApp({ NODE_ENV: 'production' });
    try {
      expect((await fetch(`${prod.url}/demo`)).status).toBe(404);
    } finally {
      await prod.close();
    }
  });
});
