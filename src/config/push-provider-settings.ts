import { createPrivateKey } from 'node:crypto';
import { EnvReader } from './env-reader';

export interface WebPushSettings {
  /** The VAPID key pair in the `web-push` library's base64url format (raw P-256 point / scalar). */
  publicKey: string;
  privateKey: string;
  /** `mailto:` or `https:` contact the push services may use (RFC 8292 `sub`). */
  subject: string;
}

export interface ApnsSettings {
  /** The `.p8` token key (PKCS#8 PEM, P-256). */
  key: string;
  keyId: string;
  teamId: string;
  /** The app's bundle id. */
  topic: string;
  /** Origin of the APNs HTTP/2 API. */
  url: string;
}

/** The fields of a Google service-account JSON the gateway uses. */
export interface FcmServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: string;
  privateKeyId?: string;
  /** Where the OAuth access token comes from (the JWT bearer grant). */
  tokenUri: string;
}

export interface FcmSettings {
  serviceAccount: FcmServiceAccount;
  url: string;
}

/** How every provider sends: how many requests at once, and how hard it retries. */
export interface PushDeliverySettings {
  /** Requests in flight per provider; the rest wait in a queue. */
  concurrency: number;
  /** Attempts per push, the first included. */
  maxAttempts: number;
  /** The first retry waits about this long; each next one twice as long (with jitter). */
  retryBaseMs: number;
  /** No retry starts later than this after the first attempt (a longer Retry-After ends the push). */
  retryBudgetMs: number;
  /** One request's time limit (connect + response). */
  requestTimeoutMs: number;
}

/** A provider left out is off: `PushSender.enabled` says false and its sends fail `not_configured`. */
export interface PushProviderSettings {
  webpush?: WebPushSettings;
  apns?: ApnsSettings;
  fcm?: FcmSettings;
  delivery: PushDeliverySettings;
}

export function readPushProviderSettings(r: EnvReader): PushProviderSettings {
  return {
    webpush: readWebPush(r),
    apns: readApns(r),
    fcm: readFcm(r),
    delivery: {
      concurrency: r.int('PUSH_CONCURRENCY', 16, { min: 1, max: 1_000 }),
      maxAttempts: r.int('PUSH_MAX_ATTEMPTS', 5, { min: 1, max: 20 }),
      retryBaseMs: r.int('PUSH_RETRY_BASE_MS', 1_000, { min: 1, max: 60_000 }),
      retryBudgetMs: r.int('PUSH_RETRY_BUDGET_MS', 60_000, { min: 0, max: 3_600_000 }),
      requestTimeoutMs: r.int('PUSH_REQUEST_TIMEOUT_MS', 10_000, { min: 100, max: 120_000 }),
    },
  };
}

/** All of a provider's required settings, or none: a half-configured provider is a start error. */
function allOrNone<K extends string>(r: EnvReader, names: readonly K[]): Record<K, string> | undefined {
  const values = {} as Record<K, string>;
  const missing: K[] = [];
  for (const name of names) {
    const value = r.string(name);
    if (value === undefined) missing.push(name);
    else values[name] = value;
  }
  if (missing.length === names.length) return undefined;
  if (missing.length > 0) {
    const given = names.filter((n) => !missing.includes(n));
    r.fail(missing.join(', '), `${missing.length > 1 ? 'are' : 'is'} required with ${given.join(', ')} (set all or none)`);
    return undefined;
  }
  return values;
}

function readWebPush(r: EnvReader): WebPushSettings | undefined {
  const v = allOrNone(r, ['WEBPUSH_VAPID_PUBLIC_KEY', 'WEBPUSH_VAPID_PRIVATE_KEY', 'WEBPUSH_SUBJECT']);
  if (!v) return undefined;
  const publicKey = v.WEBPUSH_VAPID_PUBLIC_KEY;
  const privateKey = v.WEBPUSH_VAPID_PRIVATE_KEY;
  const subject = v.WEBPUSH_SUBJECT;
  const pub = base64url(publicKey);
  if (!pub || pub.length !== 65 || pub[0] !== 4) {
    r.fail('WEBPUSH_VAPID_PUBLIC_KEY', 'must be an uncompressed P-256 point in base64url (65 bytes; `npx web-push generate-vapid-keys`)');
  }
  const priv = base64url(privateKey);
  if (!priv || priv.length !== 32) {
    r.fail('WEBPUSH_VAPID_PRIVATE_KEY', 'must be a P-256 private key in base64url (32 bytes; `npx web-push generate-vapid-keys`)');
  }
  if (!/^mailto:[^\s]+@[^\s]+$/.test(subject) && !isUrl(subject, 'https:')) {
    r.fail('WEBPUSH_SUBJECT', `must be a mailto: address or an https: URL, got "${subject}"`);
  }
  return { publicKey, privateKey, subject };
}

function readApns(r: EnvReader): ApnsSettings | undefined {
  const url = r.string('APNS_URL') ?? 'https://api.push.apple.com';
  if (!isUrl(url, 'https:')) r.fail('APNS_URL', `must be an https: URL, got "${url}"`);
  const v = allOrNone(r, ['APNS_KEY', 'APNS_KEY_ID', 'APNS_TEAM_ID', 'APNS_TOPIC']);
  if (!v) return undefined;
  const key = v.APNS_KEY.replace(/\\n/g, '\n');
  if (!isP256PrivateKey(key)) r.fail('APNS_KEY', 'must be the .p8 token key: a PEM P-256 private key');
  if (!/^[A-Z0-9]{10}$/.test(v.APNS_KEY_ID)) r.fail('APNS_KEY_ID', `must be the key's 10-character id, got "${v.APNS_KEY_ID}"`);
  if (!/^[A-Z0-9]{10}$/.test(v.APNS_TEAM_ID)) r.fail('APNS_TEAM_ID', `must be the 10-character team id, got "${v.APNS_TEAM_ID}"`);
  if (!/^[A-Za-z0-9.-]+$/.test(v.APNS_TOPIC)) r.fail('APNS_TOPIC', `must be the app's bundle id, got "${v.APNS_TOPIC}"`);
  return { key, keyId: v.APNS_KEY_ID, teamId: v.APNS_TEAM_ID, topic: v.APNS_TOPIC, url: origin(url) };
}

function readFcm(r: EnvReader): FcmSettings | undefined {
  const url = r.string('FCM_URL') ?? 'https://fcm.googleapis.com';
  if (!isUrl(url, 'https:')) r.fail('FCM_URL', `must be an https: URL, got "${url}"`);
  const raw = r.string('FCM_SERVICE_ACCOUNT');
  if (!raw) return undefined;
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    json = parsed as Record<string, unknown>;
  } catch {
    r.fail('FCM_SERVICE_ACCOUNT', "must be the service account's JSON text (a JSON object)");
    return undefined;
  }
  const field = (name: string): string | undefined => (typeof json[name] === 'string' && json[name] ? (json[name]) : undefined);
  const missing = ['project_id', 'client_email', 'private_key', 'token_uri'].filter((f) => field(f) === undefined);
  if (missing.length) {
    r.fail('FCM_SERVICE_ACCOUNT', `lacks ${missing.join(', ')} (download the JSON key of a service account in the Firebase console)`);
    return undefined;
  }
  const privateKey = (field('private_key') ?? '').replace(/\\n/g, '\n');
  if (!isRsaPrivateKey(privateKey)) r.fail('FCM_SERVICE_ACCOUNT', 'private_key must be a PEM RSA private key');
  const tokenUri = field('token_uri') ?? '';
  if (!isUrl(tokenUri, 'https:')) r.fail('FCM_SERVICE_ACCOUNT', `token_uri must be an https: URL, got "${tokenUri}"`);
  const serviceAccount: FcmServiceAccount = {
    projectId: field('project_id') ?? '',
    clientEmail: field('client_email') ?? '',
    privateKey,
    privateKeyId: field('private_key_id'),
    tokenUri,
  };
  return { serviceAccount, url: origin(url) };
}

function base64url(value: string): Buffer | undefined {
  return /^[A-Za-z0-9_-]+={0,2}$/.test(value) ? Buffer.from(value, 'base64url') : undefined;
}

function isUrl(value: string, protocol: string): boolean {
  try {
    return new URL(value).protocol === protocol;
  } catch {
    return false;
  }
}

function origin(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url;
  }
}

function isP256PrivateKey(pem: string): boolean {
  try {
    const key = createPrivateKey(pem);
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}

function isRsaPrivateKey(pem: string): boolean {
  try {
    return createPrivateKey(pem).asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}
