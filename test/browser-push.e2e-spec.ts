import { BrowserContext } from 'playwright-core';
import * as webpush from 'web-push';
import { api, startTestApp, TestApp, waitFor } from './support/app';
import { trustTestCa } from './support/trust-test-ca';
import { launchChromiumProfile, watchErrors } from './support/chromium';
import { getJson } from './support/gateways';
import { WebPushTestServer } from './support/push';

type Json = Record<string, any>;

/**
 * The demo's Web Push path in a real headless Chromium: the page registers its service worker and
 * asks the browser for a real PushSubscription with the gateway's VAPID key, then registers it
 * with register_push. Chromium's push service (FCM) cannot be reached from this machine: the
 * browser never answers the subscribe (the page gives up after 10 s and says so; in a plain,
 * incognito-like context Chromium refuses the Push API outright, hence a profile). The
 * registration path is then proven with a
 * subscription made of generated P-256 keys whose endpoint is a local Web Push service, which
 * checks VAPID and decrypts what the gateway sends.
 */
describe('web demo: native push registration in headless Chromium', () => {
  let gw: TestApp;
  let context: BrowserContext;
  let service: WebPushTestServer;
  let vapidPublicKey: string;

  beforeAll(async () => {
    service = await WebPushTestServer.start();
    trustTestCa();
    const vapid = webpush.generateVAPIDKeys();
    vapidPublicKey = vapid.publicKey;
    gw = await startTestApp({
      HEARTBEAT_INTERVAL_MS: '1000',
      HEARTBEAT_MIN_MS: '500',
      DEMO_SHARE_API_KEY: 'true',
      WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: 'mailto:ops@example.com',
      WEBPUSH_ENDPOINT_HOSTS: 'fcm.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com,127.0.0.1',
    });
    context = await launchChromiumProfile();
  }, 30_000);
  afterAll(async () => {
    await context?.close();
    await gw?.close();
    await service?.close();
  });

  it('hands the page the VAPID key, registers the service worker and asks for a real subscription; registers generated P-256 keys and gets the fallback', async () => {
    await context.grantPermissions(['notifications'], { origin: gw.url });
    const page = await context.newPage();
    const errors: string[] = [];
    watchErrors(page, errors);
    await page.goto(`${gw.url}/demo?device=demo-push`);
    await page.waitForSelector('#state.online', { timeout: 10_000 });
    expect(await getJson<Json>(gw.url, '/demo/session?device=demo-push')).toMatchObject({ vapidPublicKey });

    await page.click('#enablePush');
    await waitFor(async () => /^(registered|failed)/.test((await page.textContent('#pushState')) ?? ''), 20_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; #pushState: ${await page.textContent('#pushState')}`);
    });
    const outcome = (await page.textContent('#pushState'))!;
    // The service worker itself is installed either way.
    const scriptUrl = await page.evaluate(async () => {
      const nav = (globalThis as unknown as { navigator: { serviceWorker: { getRegistration(scope: string): Promise<{ active?: { scriptURL: string } } | undefined> } } }).navigator;
      return (await nav.serviceWorker.getRegistration('/demo/'))?.active?.scriptURL;
    });
    expect(scriptUrl).toBe(`${gw.url}/demo/push-sw.js`);
    const device = await getJson<Json>(gw.url, '/v1/devices/demo-push');
    if (outcome.startsWith('registered')) {
      expect(device).toMatchObject({ push: { provider: 'webpush' } });
    } else {
      // What Chromium says without its push service (recorded in the report): nothing was registered.
      process.stdout.write(`real PushSubscription in headless Chromium: ${outcome}\n`);
      expect(device).not.toHaveProperty('push');
    }

    // The registration path with generated keys, through the page's own SDK client.
    const sub = service.subscribe();
    await page.evaluate((json) => (globalThis as unknown as { pushDemo: { registerPush(t: unknown): Promise<void> } }).pushDemo.registerPush({ provider: 'webpush', subscription: json }), sub.json);
    expect(await getJson<Json>(gw.url, '/v1/devices/demo-push')).toMatchObject({ push: { provider: 'webpush' } });
    await page.close();
    await waitFor(async () => (await getJson<Json>(gw.url, '/v1/devices/demo-push')).online === false);
    const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['demo-push'], title: 'While away', data: { n: 1 }, ttl: 60, fallback: 'offline' } });
    const { id } = (await res.json()) as { id: string };
    await service.waitForRequests(1);
    expect(service.receivedFor(sub.id)).toMatchObject([{ problems: [], payload: { id, title: 'While away', data: { n: 1 } } }]);
    expect(errors.filter((e) => !e.includes('push service'))).toEqual([]);
  }, 60_000);
});
