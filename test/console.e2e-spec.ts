import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { launchChromium, watchErrors } from './support/chromium';
import { deviceToken, TEST_API_KEY } from './support/tokens';

const OPS_TOKEN = 'ops-token-0123456789abcdef';
/**
 * Where the screenshots go: docs/ (what the README shows) when SCREENSHOTS=docs, e.g.
 * `SCREENSHOTS=docs npx jest test/console.e2e-spec.ts`; otherwise a temporary folder, so an
 * ordinary test run takes them all the same but leaves the working tree clean.
 */
const DOCS = process.env.SCREENSHOTS === 'docs' ? join(__dirname, '..', 'docs') : mkdtempSync(join(tmpdir(), 'console-shots-'));
const NETWORK = 'wifi:console-lab';

/** A real device (socket.io-client): beats at its interval until told to stop beating. */
async function device(url: string, deviceId: string): Promise<{ socket: Socket; stopBeating: () => void; close: () => void }> {
  const socket = connectDevice(url, deviceToken({ sub: 'console-user', deviceId, platform: 'android' }), { auth: { network: NETWORK } });
  const ready = await nextEvent<{ heartbeat: { interval: number } }>(socket, 'ready');
  const beat = setInterval(() => socket.emit('heartbeat', { interval: ready.heartbeat.interval, network: NETWORK }), ready.heartbeat.interval);
  return { socket, stopBeating: () => clearInterval(beat), close: () => (clearInterval(beat), socket.close()) };
}

/** A number the page shows (text, or an attribute), read from here: the CSP refuses evaluated strings. */
const number = async (page: Page, selector: string, attribute?: string) =>
  Number(attribute ? await page.getAttribute(selector, attribute) : await page.textContent(selector));

const shows = (page: Page, selector: string, check: (n: number) => boolean, timeoutMs = 10_000, attribute?: string) =>
  waitFor(async () => check(await number(page, selector, attribute)), timeoutMs).catch(async () => {
    throw new Error(`${selector}${attribute ? `[${attribute}]` : ''} stayed at ${await number(page, selector, attribute)}`);
  });

describe('ops console (/console) in headless Chromium', () => {
  let gw: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    gw = await startTestApp({ HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_MIN_MS: '500', SWEEP_INTERVAL_MS: '500', OPS_TOKEN,
      // The first test makes a dozen failed authentications on purpose.
      API_AUTH_FAILURES_PER_MINUTE: '100' });
    browser = await launchChromium();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('answers 401 on every data endpoint it uses without a credential, and OPS_TOKEN only reads', async () => {
    const reads = ['/v1/ops/stats', '/v1/presence', '/v1/devices/phone-1', '/v1/notifications/00000000-0000-4000-8000-000000000000', '/v1/users/u/devices'];
    for (const path of reads) {
      expect([path, (await api(gw.url, path, { key: null })).status]).toEqual([path, 401]);
      expect([path, (await api(gw.url, path, { key: 'wrong-credential-0123456789' })).status]).toEqual([path, 401]);
      expect([path, (await api(gw.url, path, { key: OPS_TOKEN })).status]).toEqual([path, path.startsWith('/v1/devices/') || path.startsWith('/v1/notifications/') ? 404 : 200]);
    }
    const send = { method: 'POST', json: { deviceIds: ['phone-1'], data: {} } };
    expect((await api(gw.url, '/v1/notifications', { ...send, key: null })).status).toBe(401);
    expect((await api(gw.url, '/v1/notifications', { ...send, key: OPS_TOKEN })).status).toBe(401);
    expect((await api(gw.url, '/v1/devices/phone-1/session', { method: 'DELETE', key: OPS_TOKEN })).status).toBe(401);
    const stats = (await (await api(gw.url, '/v1/ops/stats', { key: OPS_TOKEN })).json()) as { credential: string };
    expect(stats.credential).toBe('ops_token');
    // The measured accuracy the console links to is repository documentation, not runtime data.
    const doc = await fetch(`${gw.url}/console/presence-accuracy.md`);
    expect(doc.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await doc.text()).toMatch(/^# Presence accuracy on real networks/);
    // Documented in OpenAPI like the rest of the API.
    const openapi = (await (await api(gw.url, '/docs-json', { key: OPS_TOKEN })).json()) as any;
    expect(openapi.paths['/v1/ops/stats'].get.responses['200']).toBeDefined();
    expect(openapi.components.schemas.DeviceDto.properties.ttl).toBeDefined();
  });

  it('shows nothing before log-in: a static shell under a strict CSP', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    watchErrors(page, errors);
    const response = await page.goto(`${gw.url}/console`);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe');
    await page.locator('#credential').waitFor();
    expect(await page.isHidden('#app')).toBe(true);
    expect(await page.textContent('#online-total')).toBe('-');

    await page.fill('#credential', 'not-a-real-credential-0123');
    await page.click('#login-form button');
    await page.locator('#login-error', { hasText: '401' }).waitFor({ timeout: 5_000 });
    expect(await page.isHidden('#app')).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length)).toBe(0);
    await page.screenshot({ path: join(DOCS, 'console-login.png') });

    // OPS_TOKEN logs in read-only; the credential lives in this tab's sessionStorage until log-out.
    await page.fill('#credential', OPS_TOKEN);
    await page.click('#login-form button');
    await page.locator('#app').waitFor({ state: 'visible', timeout: 5_000 });
    expect(await page.textContent('#who')).toContain('OPS_TOKEN');
    expect(await page.isDisabled('#send-fields button')).toBe(true);
    await page.reload();
    await page.locator('#app').waitFor({ state: 'visible', timeout: 5_000 });
    await page.click('#logout');
    expect(await page.isHidden('#app')).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length)).toBe(0);
    // The refused log-in is the only failed request; nothing else was blocked or broke.
    expect(errors).toEqual([expect.stringMatching(/^401 .*\/v1\/ops\/stats$/)]);
    await page.close();
  });

  it('after log-in with an API key: totals, a moving heartbeat chart, a device lookup, and a notification sent from the form with its receipt', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    watchErrors(page, errors);
    await page.goto(`${gw.url}/console`);
    await page.fill('#credential', TEST_API_KEY);
    await page.click('#login-form button');
    await page.locator('#app').waitFor({ state: 'visible', timeout: 5_000 });
    expect(await page.textContent('#who')).toContain('API key');
    await shows(page, '#online-total', (n) => n === 0);
    const quietBeats = await number(page, '#chart-heartbeats', 'data-last');

    const phone = await device(gw.url, 'console-phone');
    try {
      // Totals, per instance, and a heartbeat chart whose latest point moved off the idle rate.
      await shows(page, '#online-total', (n) => n === 1);
      const row = page.locator(`#instances tr[data-instance="${gw.config.instanceId}"] .online-count`);
      await row.waitFor({ timeout: 5_000 });
      expect(await row.textContent()).toBe('1');
      await shows(page, '#chart-heartbeats', (n) => n > quietBeats, 10_000, 'data-last');
      expect(await page.getAttribute('#chart-heartbeats polyline', 'points')).toMatch(/^\d/);

      // What the network taught: three stable beats at 1 s make a sample.
      const recommended = page.locator(`#networks tr[data-network="${NETWORK}"] .recommended`);
      await recommended.waitFor({ timeout: 10_000 });
      expect(await recommended.textContent()).toBe('1.00 s');

      // The device's presence record and its TTL.
      await page.fill('#device-id', 'console-phone');
      await page.click('#device-form button');
      await page.locator('#device-record tr[data-field="online"] .online').waitFor({ timeout: 5_000 });
      expect(await page.textContent('#device-record tr[data-field="instanceId"] td')).toBe(gw.config.instanceId);
      expect(await page.textContent('#device-record tr[data-field="network"] td')).toBe(NETWORK);
      const ttl = Number((await page.textContent('#device-ttl'))!.replace(' s', ''));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(2.5); // 2.5 x 1 s, no slack in tests

      // A notification from the form reaches the device, which acks it; the lookup shows the receipt.
      const arrived = nextEvent<{ id: string; title: string }>(phone.socket, 'notification');
      phone.socket.on('notification', (_n: unknown, ack?: () => void) => ack?.());
      await page.fill('#send-targets', 'console-phone');
      await page.fill('#send-title', 'Hello from the console');
      await page.click('#send-form button[type="submit"]');
      const received = await arrived;
      expect(received.title).toBe('Hello from the console');
      await page.locator('#sent-id').waitFor({ timeout: 5_000 });
      expect(await page.textContent('#sent-id')).toBe(received.id);
      await page.locator('#receipts tr[data-device="console-phone"] .status-delivered').waitFor({ timeout: 10_000 });

      await shows(page, '#chart-pushes', (n) => n > 0, 5_000, 'data-points');

      // Presence accuracy: a second device goes silent with its socket open (a hung app); the
      // sweeper retires it at its TTL and the console counts the expired session.
      const tablet = await device(gw.url, 'console-tablet');
      try {
        await shows(page, '#online-total', (n) => n === 2);
        tablet.stopBeating();
        await shows(page, '#expired-total', (n) => n === 1);
        await shows(page, '#online-total', (n) => n === 1);
        await shows(page, '#chart-expired', (n) => n > 0, 5_000, 'data-total');
      } finally {
        tablet.close();
      }
      await page.screenshot({ path: join(DOCS, 'console.png'), fullPage: true });
    } finally {
      phone.close();
    }
    expect(errors).toEqual([]);
    await page.close();
  });
});
