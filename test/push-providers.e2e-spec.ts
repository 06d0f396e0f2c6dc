import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as webpush from 'web-push';
import { ApnsTestServer, FcmTestServer, WebPushTestServer } from './support/push';
import { spawnGateway } from './support/process';

const DIST = join(__dirname, '..', 'dist');

/**
 * The built providers in a process of their own, configured only by environment variables as a
 * gateway is, trusting the local servers' certificate only through NODE_EXTRA_CA_CERTS.
 */
const SENDER = `
const { loadConfig } = require(${JSON.stringify(join(DIST, 'config', 'app-config.js'))});
const { createPushSender } = require(${JSON.stringify(join(DIST, 'push', 'providers', 'create-push-sender.js'))});
const { MetricsService } = require(${JSON.stringify(join(DIST, 'metrics', 'metrics.service.js'))});
const sender = createPushSender(loadConfig(process.env).pushProviders, new MetricsService(), { now: Date.now });
const notification = JSON.parse(process.env.TEST_NOTIFICATION);
Promise.all(JSON.parse(process.env.TEST_REGISTRATIONS).map((r) => sender.send(r, { notification, ttlSeconds: 60 })))
  .then(async (outcomes) => { console.log(JSON.stringify(outcomes)); await sender.onApplicationShutdown(); });
`;

function runSender(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', SENDER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('native push providers in a separate process', () => {
  const vapid = webpush.generateVAPIDKeys();
  const p8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const apnsIdentity = { keyId: 'KEY1234567', teamId: 'TEAM765432', topic: 'com.example.e2e' };
  let web: WebPushTestServer;
  let apns: ApnsTestServer;
  let fcm: FcmTestServer;
  let env: Record<string, string>;
  const notification = { id: '0f8fad5b-d9cb-469f-a165-70867728950e', data: { chat: 7, text: 'hi' }, title: 'New message', body: 'hi', collapseKey: 'chat-7', createdAt: 1 };

  beforeAll(async () => {
    if (!existsSync(join(DIST, 'push', 'providers', 'create-push-sender.js'))) throw new Error('dist is missing: run "npm run build" first');
    [web, apns, fcm] = await Promise.all([WebPushTestServer.start(), ApnsTestServer.start({ key: p8, ...apnsIdentity }), FcmTestServer.start()]);
    env = {
      WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: 'https://example.com/contact',
      APNS_KEY: p8.replace(/\n/g, '\\n'),
      APNS_KEY_ID: apnsIdentity.keyId,
      APNS_TEAM_ID: apnsIdentity.teamId,
      APNS_TOPIC: apnsIdentity.topic,
      APNS_URL: apns.url,
      FCM_SERVICE_ACCOUNT: JSON.stringify(fcm.serviceAccount()),
      FCM_URL: fcm.url,
      TEST_NOTIFICATION: JSON.stringify(notification),
    };
  });
  afterAll(async () => {
    await Promise.all([web?.close(), apns?.close(), fcm?.close()]);
  });

  it('reaches all three services with settings from the environment and the CA from NODE_EXTRA_CA_CERTS', async () => {
    const sub = web.subscribe();
    const registrations = [
      { provider: 'webpush', subscription: sub.json },
      { provider: 'apns', token: 'c0ffee'.repeat(10) + 'abcd' },
      { provider: 'fcm', token: 'android-device-token' },
    ];
    const { code, out } = await runSender({ ...env, NODE_EXTRA_CA_CERTS: web.caFile, TEST_REGISTRATIONS: JSON.stringify(registrations) });
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(JSON.parse(out.trim().split('\n').pop() ?? '')).toEqual([
      { status: 'sent', provider: 'webpush' },
      { status: 'sent', provider: 'apns' },
      { status: 'sent', provider: 'fcm' },
    ]);
    const [w] = web.receivedFor(sub.id);
    expect(w?.problems).toEqual([]);
    expect(w?.payload).toEqual(notification);
    const a = apns.received.at(-1);
    expect(a?.problems).toEqual([]);
    expect(a?.body).toEqual({ aps: { alert: { title: 'New message', body: 'hi' } }, id: notification.id, data: notification.data });
    const f = fcm.received.at(-1);
    expect(f?.problems).toEqual([]);
    expect(f?.message?.data).toEqual({ id: notification.id, data: JSON.stringify(notification.data) });
  }, 30_000);

  it('does not trust the self-signed certificate without NODE_EXTRA_CA_CERTS (verification stays on)', async () => {
    const sub = web.subscribe();
    const registrations = [
      { provider: 'webpush', subscription: sub.json },
      { provider: 'apns', token: 'c0ffee'.repeat(10) + 'abcd' },
      { provider: 'fcm', token: 'android-device-token' },
    ];
    const before = { apns: apns.received.length, fcm: fcm.received.length, tokens: fcm.tokenRequests.length };
    const { code, out } = await runSender({ ...env, PUSH_MAX_ATTEMPTS: '1', TEST_REGISTRATIONS: JSON.stringify(registrations) });
    expect({ code, out }).toMatchObject({ code: 0 });
    const outcomes = JSON.parse(out.trim().split('\n').pop() ?? '') as { status: string; reason: string; detail: string }[];
    for (const o of outcomes) {
      expect(o).toMatchObject({ status: 'failed', reason: 'unavailable' });
      expect(o.detail).toMatch(/certificate/i);
    }
    expect(web.receivedFor(sub.id)).toEqual([]);
    expect([apns.received.length, fcm.received.length, fcm.tokenRequests.length]).toEqual([before.apns, before.fcm, before.tokens]);
  }, 30_000);

  it('refuses to start a gateway with a half-configured provider, naming the missing variables', async () => {
    const gw = spawnGateway({ API_KEYS: 'k'.repeat(16), DEVICE_JWT_SECRET: 'x'.repeat(32), PORT: '0', APNS_KEY: env.APNS_KEY ?? '', APNS_TOPIC: 'com.example.e2e' });
    const code = await gw.exited;
    expect(code).not.toBe(0);
    expect(gw.output()).toContain('APNS_KEY_ID, APNS_TEAM_ID are required with APNS_KEY, APNS_TOPIC (set all or none)');
  }, 30_000);
});
