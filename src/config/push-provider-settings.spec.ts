import { generateKeyPairSync } from 'node:crypto';
import * as webpush from 'web-push';
import { ConfigError, loadConfig } from './app-config';

const BASE = { API_KEYS: 'k'.repeat(16), DEVICE_JWT_SECRET: 'x'.repeat(32) };
const vapid = webpush.generateVAPIDKeys();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const account = {
  type: 'service_account',
  project_id: 'my-app',
  private_key_id: 'abc',
  private_key: rsa,
  client_email: 'push@my-app.iam.gserviceaccount.com',
  token_uri: 'https://oauth2.googleapis.com/token',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('native push provider settings', () => {
  it('leaves every provider off by default, with the documented delivery defaults', () => {
    const c = loadConfig(BASE);
    expect(c.pushProviders).toEqual({
      webpush: undefined,
      apns: undefined,
      fcm: undefined,
      delivery: { concurrency: 16, maxAttempts: 5, retryBaseMs: 1_000, retryBudgetMs: 60_000, requestTimeoutMs: 10_000 },
    });
  });

  it('reads all three providers', () => {
    const c = loadConfig({
      ...BASE,
      WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: 'mailto:ops@example.com',
      APNS_KEY: ec.replace(/\n/g, '\\n'),
      APNS_KEY_ID: 'ABC123DEFG',
      APNS_TEAM_ID: 'TEAM123456',
      APNS_TOPIC: 'com.example.app',
      APNS_URL: 'https://api.sandbox.push.apple.com/',
      FCM_SERVICE_ACCOUNT: JSON.stringify({ ...account, private_key: rsa.replace(/\n/g, '\\n') }),
    });
    expect(c.pushProviders.webpush).toEqual({ publicKey: vapid.publicKey, privateKey: vapid.privateKey, subject: 'mailto:ops@example.com' });
    expect(c.pushProviders.apns).toEqual({ key: ec, keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.example.app', url: 'https://api.sandbox.push.apple.com' });
    expect(c.pushProviders.fcm).toEqual({
      url: 'https://fcm.googleapis.com',
      serviceAccount: { projectId: 'my-app', clientEmail: account.client_email, privateKey: rsa, privateKeyId: 'abc', tokenUri: account.token_uri },
    });
  });

  it('refuses a half-configured provider, naming what is missing', () => {
    expect(problems({ WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey })).toEqual([
      'WEBPUSH_VAPID_PRIVATE_KEY, WEBPUSH_SUBJECT are required with WEBPUSH_VAPID_PUBLIC_KEY (set all or none)',
    ]);
    expect(problems({ APNS_KEY: ec, APNS_KEY_ID: 'ABC123DEFG', APNS_TEAM_ID: 'TEAM123456' })).toEqual([
      'APNS_TOPIC is required with APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID (set all or none)',
    ]);
  });

  it('names every bad value', () => {
    const found = problems({
      WEBPUSH_VAPID_PUBLIC_KEY: 'not-a-key',
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.publicKey,
      WEBPUSH_SUBJECT: 'ops@example.com',
      APNS_KEY: rsa,
      APNS_KEY_ID: 'short',
      APNS_TEAM_ID: 'TEAM123456',
      APNS_TOPIC: 'com.example.app',
      APNS_URL: 'http://api.push.apple.com',
      FCM_SERVICE_ACCOUNT: '{"project_id": "x"}',
      FCM_URL: 'ftp://x',
      PUSH_CONCURRENCY: '0',
    });
    expect(found).toEqual(expect.arrayContaining([
      expect.stringMatching(/^WEBPUSH_VAPID_PUBLIC_KEY must be an uncompressed P-256 point/),
      expect.stringMatching(/^WEBPUSH_VAPID_PRIVATE_KEY must be a P-256 private key/),
      expect.stringMatching(/^WEBPUSH_SUBJECT must be a mailto: address or an https: URL/),
      expect.stringMatching(/^APNS_KEY must be the .p8 token key/),
      expect.stringMatching(/^APNS_KEY_ID must be the key's 10-character id/),
      expect.stringMatching(/^APNS_URL must be an https: URL/),
      expect.stringMatching(/^FCM_SERVICE_ACCOUNT lacks client_email, private_key, token_uri/),
      expect.stringMatching(/^FCM_URL must be an https: URL/),
      expect.stringMatching(/^PUSH_CONCURRENCY must be >= 1/),
    ]));
    expect(found).toHaveLength(9);
    expect(problems({ FCM_SERVICE_ACCOUNT: 'not json' })).toEqual([expect.stringMatching(/^FCM_SERVICE_ACCOUNT must be the service account's JSON text/)]);
    expect(problems({ FCM_SERVICE_ACCOUNT: JSON.stringify({ ...account, private_key: ec, token_uri: 'http://x/token' }) })).toEqual([
      'FCM_SERVICE_ACCOUNT private_key must be a PEM RSA private key',
      'FCM_SERVICE_ACCOUNT token_uri must be an https: URL, got "http://x/token"',
    ]);
  });
});
