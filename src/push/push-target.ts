import { createPublicKey } from 'node:crypto';
import { hostAllowed, HostRule } from './endpoint-hosts';
import { PUSH_PROVIDERS, PushRegistration } from './push.types';

/** What `register_push` may carry, as JSON Schema (published in /asyncapi.json). */
export const REGISTER_PUSH_SCHEMA = {
  type: 'object',
  required: ['provider'],
  additionalProperties: false,
  properties: {
    provider: { enum: [...PUSH_PROVIDERS] },
    token: { type: 'string', minLength: 1, maxLength: 4096, description: 'APNs device token (hex) or FCM registration token' },
    subscription: {
      type: 'object',
      description: "a browser PushSubscription's toJSON() (Web Push)",
      required: ['endpoint', 'keys'],
      properties: {
        endpoint: { type: 'string', minLength: 1, maxLength: 2048 },
        expirationTime: { type: ['number', 'null'] },
        keys: {
          type: 'object',
          required: ['p256dh', 'auth'],
          properties: { p256dh: { type: 'string', maxLength: 200 }, auth: { type: 'string', maxLength: 100 } },
        },
      },
    },
  },
} as const;

export interface RegisterPushRequest {
  provider: (typeof PUSH_PROVIDERS)[number];
  token?: string;
  subscription?: { endpoint: string; expirationTime?: number | null; keys: { p256dh: string; auth: string } };
}

/** APNs device tokens are 32 bytes in hex today; Apple says they may grow, so up to 100 bytes. */
const APNS_TOKEN = /^[0-9a-fA-F]{64,200}$/;
/** FCM registration tokens are ~150-250 characters of this alphabet; bounded generously. */
const FCM_TOKEN = /^[A-Za-z0-9_:.-]{32,1024}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * The registration to store, or a sentence saying why it is refused (`invalid_push_target`).
 * A Web Push endpoint must be `https` on an allowed host; its keys a P-256 point (65 bytes,
 * uncompressed, on the curve) and a 16-byte auth secret, as RFC 8291 needs them.
 */
export function readPushTarget(request: RegisterPushRequest, hosts: readonly HostRule[]): PushRegistration | string {
  switch (request.provider) {
    case 'webpush': {
      const sub = request.subscription;
      if (!sub || request.token !== undefined) return 'webpush takes a subscription (a PushSubscription as JSON) and no token';
      let url: URL;
      try {
        url = new URL(sub.endpoint);
      } catch {
        return 'subscription.endpoint is not a URL';
      }
      if (url.protocol !== 'https:') return 'subscription.endpoint must be an https URL';
      if (url.username || url.password) return 'subscription.endpoint must not carry credentials';
      if (!hostAllowed(hosts, url.hostname)) return `subscription.endpoint's host ${url.hostname} is not a push service this gateway accepts (WEBPUSH_ENDPOINT_HOSTS)`;
      const key = decode(sub.keys.p256dh);
      if (!key || key.length !== 65 || key[0] !== 4 || !onCurve(key)) return 'subscription.keys.p256dh must be an uncompressed P-256 public key (65 bytes, base64url)';
      if (decode(sub.keys.auth)?.length !== 16) return 'subscription.keys.auth must be 16 bytes (base64url)';
      const expirationTime = typeof sub.expirationTime === 'number' ? sub.expirationTime : null;
      return { provider: 'webpush', subscription: { endpoint: url.href, expirationTime, keys: { p256dh: sub.keys.p256dh, auth: sub.keys.auth } } };
    }
    case 'apns':
      if (request.subscription !== undefined || !request.token || !APNS_TOKEN.test(request.token)) return 'apns takes a token: the device token in hex (64 to 200 digits)';
      return { provider: 'apns', token: request.token.toLowerCase() };
    case 'fcm':
      if (request.subscription !== undefined || !request.token || !FCM_TOKEN.test(request.token)) return 'fcm takes a token: the FCM registration token (32 to 1024 characters of [A-Za-z0-9_:.-])';
      return { provider: 'fcm', token: request.token };
  }
}

function decode(value: string): Buffer | undefined {
  return BASE64URL.test(value) ? Buffer.from(value, 'base64url') : undefined;
}

function onCurve(point: Buffer): boolean {
  try {
    const jwk = { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') };
    createPublicKey({ key: jwk, format: 'jwk' });
    return true;
  } catch {
    return false;
  }
}
