import { randomBytes } from 'node:crypto';
import { EVENT_TYPE_PREFIXES, EVENT_TYPES, unknownTypePatterns } from '../events/event.types';
import { EnvReader } from './env-reader';

/** Where events for backends are POSTed (PRODUCT.md "Events for backends"); no URL: no delivery. */
export interface WebhookSettings {
  urls: readonly string[];
  /** Standard Webhooks secret, `whsec_<base64>`. */
  secret: string;
  /** Event types or `<prefix>.*` patterns each URL gets; undefined: every event. */
  events: readonly string[] | undefined;
  /** How long an event is retried, from when it was recorded, before it is dropped and counted. */
  retryMs: number;
  /** One attempt's limit, from connect to the whole answer. */
  timeoutMs: number;
}

/** Standard Webhooks secrets are 24 to 64 random bytes, base64 after `whsec_`. */
const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

export function readWebhookSettings(r: EnvReader, production: boolean, generated: Record<string, string>): WebhookSettings {
  const urls = r.list('WEBHOOK_URL') ?? [];
  for (const url of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) r.fail('WEBHOOK_URL', `must be comma-separated http:// or https:// URLs, got "${url}"`);
  }
  if (new Set(urls).size !== urls.length) r.fail('WEBHOOK_URL', 'lists a URL twice');

  let secret = r.string('WEBHOOK_SECRET');
  if (secret !== undefined) {
    const bytes = SECRET.exec(secret) ? Buffer.from(secret.slice('whsec_'.length), 'base64').length : 0;
    if (bytes < 24 || bytes > 64) r.fail('WEBHOOK_SECRET', 'must be whsec_ followed by 24 to 64 bytes in base64 (Standard Webhooks)');
  } else if (urls.length > 0) {
    if (production) r.fail('WEBHOOK_SECRET', 'is required with WEBHOOK_URL when NODE_ENV=production');
    secret = `whsec_${randomBytes(32).toString('base64')}`;
    generated.WEBHOOK_SECRET = secret;
  }

  const events = r.list('WEBHOOK_EVENTS');
  const unknown = unknownTypePatterns(events ?? []);
  if (unknown.length) {
    r.fail('WEBHOOK_EVENTS', `has unknown ${unknown.map((u) => `"${u}"`).join(', ')}: use ${EVENT_TYPES.join(', ')} or ${EVENT_TYPE_PREFIXES.map((p) => `${p}.*`).join(', ')}`);
  }

  return {
    urls,
    secret: secret ?? '',
    events: events?.length ? events : undefined,
    retryMs: readHours(r, 'WEBHOOK_RETRY_HOURS', 24),
    timeoutMs: r.int('WEBHOOK_TIMEOUT_MS', 10_000, { min: 100, max: 60_000 }),
  };
}

/** Hours, fractions allowed (0.01 = 36 s: short windows for trials and tests), up to 30 days. */
function readHours(r: EnvReader, name: string, fallback: number): number {
  const raw = r.string(name);
  if (raw === undefined) return fallback * 3_600_000;
  const hours = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!(hours >= 0.001 && hours <= 720)) {
    r.fail(name, `must be a number of hours from 0.001 to 720, got "${raw}"`);
    return fallback * 3_600_000;
  }
  return Math.round(hours * 3_600_000);
}
