import { execFileSync } from 'node:child_process';
import { Browser, chromium } from 'playwright-core';
import { api, startTestApp, TestApp } from './support/app';

/** Debian's chromium (CHROMIUM_PATH to override); `.ci/run` installs it. */
function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('The browser test needs Chromium: apt-get install chromium (or set CHROMIUM_PATH).');
  }
}

/** The web demo in a real headless Chromium, using the SDK's browser bundle against the real gateway. */
describe('web demo in headless Chromium', () => {
  let gw: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    gw = await startTestApp({ HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_MIN_MS: '500' });
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('connects, shows its heartbeat, and shows a notification sent through REST and one sent from its form', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${gw.url}/demo`);
    await page.waitForSelector('#state.online', { timeout: 10_000 });
    const deviceId = (await page.textContent('#device'))!;
    expect(deviceId).toMatch(/^demo-[0-9a-f]{8}$/);
    await page.waitForFunction("Number(document.getElementById('beats').textContent) >= 1", undefined, { timeout: 5_000 });
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

  it('keeps the demo off in production unless asked', async () => {
    const prod = await startTestApp({ NODE_ENV: 'production' });
    try {
      expect((await fetch(`${prod.url}/demo`)).status).toBe(404);
    } finally {
      await prod.close();
    }
  });
});
