import { generateKeyPairSync } from 'node:crypto';
import { ConfigError, loadConfig } from './app-config';

const SECRET = 'x'.repeat(32);
const KEY = 'k'.repeat(16);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET });
    expect(c.port).toBe(3000);
    expect(c.redis).toBeUndefined();
    expect(c.redisPrefix).toBe('push:');
    expect(c.heartbeat).toEqual({ interval: 25_000, min: 5_000, max: 300_000 });
    expect(c.sweepIntervalMs).toBe(5_000);
    expect(c.maxPayloadBytes).toBe(4_096);
    expect(c.apiRateLimit).toBe(6_000);
    expect(c.apiAuthFailuresPerMinute).toBe(20);
    expect(c.presenceEventGraceMs).toBe(5_000);
    expect(c.generated).toEqual({});
    expect(c.jwt).toEqual({ kind: 'secret', secret: SECRET, algorithms: ['HS256'] });
  });

  it('reads WEBPUSH_ENDPOINT_HOSTS (the browsers push services by default) and refuses a bad entry', () => {
    expect(loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET }).webPushEndpointHosts).toEqual([
      { exact: 'fcm.googleapis.com' },
      { exact: 'updates.push.services.mozilla.com' },
      { suffix: 'push.apple.com' },
      { suffix: 'notify.windows.com' },
    ]);
    expect(loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET, WEBPUSH_ENDPOINT_HOSTS: '127.0.0.1, push.example.com' }).webPushEndpointHosts).toEqual([
      { exact: '127.0.0.1' },
      { exact: 'push.example.com' },
    ]);
    expect(problems({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET, WEBPUSH_ENDPOINT_HOSTS: 'https://x.example.com' })).toEqual([
      expect.stringMatching(/^WEBPUSH_ENDPOINT_HOSTS .*is not a host name/),
    ]);
  });

  it('names every bad variable and why', () => {
    const found = problems({
      PORT: 'eighty',
      HEARTBEAT_INTERVAL_MS: '1000',
      HEARTBEAT_MIN_MS: '2000',
      LOG_LEVEL: 'loud',
      REDIS_URL: 'http://x',
      DEVICE_JWT_SECRET: 'short',
      API_AUTH_FAILURES_PER_MINUTE: '0',
      PRESENCE_EVENT_GRACE_MS: '600001',
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^PORT must be a whole number/),
        expect.stringMatching(/^HEARTBEAT_MIN_MS must be <= HEARTBEAT_INTERVAL_MS/),
        expect.stringMatching(/^LOG_LEVEL must be one of/),
        expect.stringMatching(/^REDIS_URL must start with redis:\/\//),
        expect.stringMatching(/^DEVICE_JWT_SECRET must be at least 32 bytes/),
        expect.stringMatching(/^API_AUTH_FAILURES_PER_MINUTE must be >= 1/),
        expect.stringMatching(/^PRESENCE_EVENT_GRACE_MS must be <= 600000/),
      ]),
    );
    expect(loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET, PRESENCE_EVENT_GRACE_MS: '0' }).presenceEventGraceMs).toBe(0);
    expect(problems({ PRESENCE_EVENT_GRACE_MS: '5s' })).toEqual([expect.stringMatching(/^PRESENCE_EVENT_GRACE_MS must be a whole number/)]);
  });

  it('generates development keys once and refuses to start without them in production', () => {
    const dev = loadConfig({});
    expect(dev.apiKeys).toHaveLength(1);
    expect(dev.generated.API_KEYS).toBe(dev.apiKeys[0]);
    expect(dev.generated.DEVICE_JWT_SECRET).toHaveLength(43);
    expect(problems({ NODE_ENV: 'production' })).toEqual([
      'API_KEYS is required when NODE_ENV=production',
      'DEVICE_JWT_SECRET or DEVICE_JWT_PUBLIC_KEY is required when NODE_ENV=production',
    ]);
  });

  it('reads the webhook settings: a secret required with a URL in production, generated outside it', () => {
    const none = loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET });
    expect(none.webhooks).toEqual({ urls: [], secret: '', events: undefined, retryMs: 24 * 3_600_000, timeoutMs: 10_000 });
    expect(none.generated).toEqual({});
    const dev = loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET, WEBHOOK_URL: 'http://a.test/hook, https://b.test/x?k=1', WEBHOOK_EVENTS: 'device.*,user.online', WEBHOOK_RETRY_HOURS: '0.5' });
    expect(dev.webhooks).toMatchObject({ urls: ['http://a.test/hook', 'https://b.test/x?k=1'], events: ['device.*', 'user.online'], retryMs: 1_800_000 });
    expect(dev.generated.WEBHOOK_SECRET).toBe(dev.webhooks.secret);
    expect(Buffer.from(dev.webhooks.secret.replace(/^whsec_/, ''), 'base64')).toHaveLength(32);
    const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    expect(loadConfig({ API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET, WEBHOOK_URL: 'http://a.test/', WEBHOOK_SECRET: secret }).webhooks.secret).toBe(secret);
    expect(problems({ NODE_ENV: 'production', API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET, WEBHOOK_URL: 'https://a.test/' })).toEqual([
      'WEBHOOK_SECRET is required with WEBHOOK_URL when NODE_ENV=production',
    ]);
    expect(
      problems({
        WEBHOOK_URL: 'ftp://a.test/,not a url',
        WEBHOOK_SECRET: 'whsec_c2hvcnQ=',
        WEBHOOK_EVENTS: 'device.online,devices.*,push.sent',
        WEBHOOK_RETRY_HOURS: '0',
        WEBHOOK_TIMEOUT_MS: '10',
      }),
    ).toEqual(
      expect.arrayContaining([
        'WEBHOOK_URL must be comma-separated http:// or https:// URLs, got "ftp://a.test/"',
        'WEBHOOK_URL must be comma-separated http:// or https:// URLs, got "not a url"',
        'WEBHOOK_SECRET must be whsec_ followed by 24 to 64 bytes in base64 (Standard Webhooks)',
        expect.stringMatching(/^WEBHOOK_EVENTS has unknown "devices\.\*", "push\.sent": use device\.online, /),
        'WEBHOOK_RETRY_HOURS must be a number of hours from 0.001 to 720, got "0"',
        'WEBHOOK_TIMEOUT_MS must be >= 100, got 10',
      ]),
    );
  });

  it('pins the algorithm to the kind of public key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(loadConfig({ API_KEYS: KEY, DEVICE_JWT_PUBLIC_KEY: rsa }).jwt.algorithms).toEqual(['RS256']);
    expect(loadConfig({ API_KEYS: KEY, DEVICE_JWT_PUBLIC_KEY: ec.replace(/\n/g, '\\n') }).jwt.algorithms).toEqual(['ES256']);
    expect(problems({ API_KEYS: KEY, DEVICE_JWT_PUBLIC_KEY: ed })).toEqual([expect.stringMatching(/RSA or P-256/)]);
    expect(problems({ API_KEYS: KEY, DEVICE_JWT_PUBLIC_KEY: 'nope' })).toEqual(['DEVICE_JWT_PUBLIC_KEY is not a PEM public key']);
  });

  it('reads one Redis mode: URL, Sentinel or Cluster (with a hash-tagged prefix)', () => {
    const base = { API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET };
    expect(loadConfig({ ...base, REDIS_URL: 'redis://h:1' }).redis).toEqual({ mode: 'url', url: 'redis://h:1' });
    expect(loadConfig({ ...base, REDIS_SENTINELS: 'a:26379, b:26380', REDIS_SENTINEL_NAME: 'main' }).redis).toEqual({
      mode: 'sentinel',
      sentinels: [
        { host: 'a', port: 26379 },
        { host: 'b', port: 26380 },
      ],
      name: 'main',
    });
    const cluster = loadConfig({ ...base, REDIS_CLUSTER_NODES: 'a:7000' });
    expect(cluster.redis).toEqual({ mode: 'cluster', nodes: [{ host: 'a', port: 7000 }] });
    expect(cluster.redisPrefix).toBe('push:');
    expect(cluster.keys.partitions).toBe(1024);
    expect(cluster.keys.of('dev-1')).toMatch(/^push:\{p[0-9a-z]{1,3}\}:$/);
    expect(loadConfig({ ...base, REDIS_URL: 'redis://h:1' }).keys.of('dev-1')).toBe('push:');
    // The old Cluster default put every key in one slot; the gateway now adds the tags itself.
    expect(problems({ ...base, REDIS_CLUSTER_NODES: 'a:7000', REDIS_PREFIX: '{push}:' })).toEqual([
      'REDIS_PREFIX must not contain { or }: on a Cluster the gateway adds a partition hash tag to each key (README "Redis key layout")',
    ]);
    expect(problems({ ...base, REDIS_SENTINELS: 'a:1' })).toEqual(['REDIS_SENTINEL_NAME is required with REDIS_SENTINELS']);
    expect(problems({ ...base, REDIS_SENTINELS: 'nope', REDIS_SENTINEL_NAME: 'm' })).toEqual([
      'REDIS_SENTINELS must be a comma-separated list of host:port, got "nope"',
    ]);
    expect(problems({ ...base, REDIS_URL: 'redis://x', REDIS_CLUSTER_NODES: 'a:1' })).toEqual([
      'REDIS_URL set only one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES',
    ]);
  });

  it('refuses short API keys', () => {
    expect(problems({ API_KEYS: 'short', DEVICE_JWT_SECRET: SECRET })).toEqual(['API_KEYS every key must be at least 16 characters']);
  });

  it('reads the token lifetime settings: a grace in ms, and an optional max age in seconds or with a unit', () => {
    const base = { API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET };
    const defaults = loadConfig(base);
    expect(defaults.tokenExpiryGraceMs).toBe(30_000);
    expect(defaults.deviceTokenMaxAgeMs).toBeUndefined();
    expect(loadConfig({ ...base, TOKEN_EXPIRY_GRACE_MS: '0' }).tokenExpiryGraceMs).toBe(0);
    expect(loadConfig({ ...base, DEVICE_TOKEN_MAX_AGE: '0' }).deviceTokenMaxAgeMs).toBeUndefined();
    expect(loadConfig({ ...base, DEVICE_TOKEN_MAX_AGE: '3600' }).deviceTokenMaxAgeMs).toBe(3_600_000);
    expect(loadConfig({ ...base, DEVICE_TOKEN_MAX_AGE: '90s' }).deviceTokenMaxAgeMs).toBe(90_000);
    expect(loadConfig({ ...base, DEVICE_TOKEN_MAX_AGE: '15m' }).deviceTokenMaxAgeMs).toBe(900_000);
    expect(loadConfig({ ...base, DEVICE_TOKEN_MAX_AGE: '24h' }).deviceTokenMaxAgeMs).toBe(86_400_000);
    expect(loadConfig({ ...base, DEVICE_TOKEN_MAX_AGE: '7d' }).deviceTokenMaxAgeMs).toBe(7 * 86_400_000);
    expect(problems({ ...base, DEVICE_TOKEN_MAX_AGE: '1.5h', TOKEN_EXPIRY_GRACE_MS: '-1' })).toEqual([
      expect.stringMatching(/^TOKEN_EXPIRY_GRACE_MS must be a whole number/),
      expect.stringMatching(/^DEVICE_TOKEN_MAX_AGE must be whole seconds or a number with a unit/),
    ]);
    expect(problems({ ...base, DEVICE_TOKEN_MAX_AGE: '400d' })).toEqual([expect.stringMatching(/^DEVICE_TOKEN_MAX_AGE must be at most/)]);
  });

  it('reads CORS_ORIGINS: * outside production by default, none in production, exact origins otherwise', () => {
    const base = { API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET };
    expect(loadConfig(base).http.corsOrigins).toBe('*');
    expect(loadConfig({ ...base, NODE_ENV: 'production' }).http.corsOrigins).toEqual([]);
    expect(loadConfig({ ...base, NODE_ENV: 'production', CORS_ORIGINS: '*' }).http.corsOrigins).toBe('*');
    expect(loadConfig({ ...base, CORS_ORIGINS: 'https://App.example.com/, http://localhost:8080, https://a.example:443, null' }).http.corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:8080',
      'https://a.example',
      'null',
    ]);
    expect(problems({ ...base, CORS_ORIGINS: 'https://a.example/app, *.example.com, ftp://x' })).toEqual([
      'CORS_ORIGINS must list origins such as https://app.example.com (no path), got "https://a.example/app"',
      'CORS_ORIGINS must list origins such as https://app.example.com (no path), got "*.example.com"',
      'CORS_ORIGINS must list origins such as https://app.example.com (no path), got "ftp://x"',
    ]);
    expect(problems({ ...base, CORS_ORIGINS: '*, https://a.example' })).toEqual(['CORS_ORIGINS must be * alone or a list of origins']);
  });

  it('reads the HTTP exposure settings with safe defaults and checks them', () => {
    const base = { API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET };
    expect(loadConfig(base).http).toEqual({
      corsOrigins: '*',
      opsToken: undefined,
      trustProxy: { hops: 0 },
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
      maxConnections: 0,
      handshakesPerAddressPerSecond: 0,
    });
    expect(loadConfig({ ...base, TRUST_PROXY: 'true' }).http.trustProxy).toEqual({ hops: 1 });
    expect(loadConfig({ ...base, TRUST_PROXY: '2' }).http.trustProxy).toEqual({ hops: 2 });
    expect(loadConfig({ ...base, TRUST_PROXY: 'loopback, 10.0.0.0/8, fd00::1' }).http.trustProxy).toEqual({
      proxies: ['loopback', '10.0.0.0/8', 'fd00::1'],
    });
    expect(
      problems({ ...base, TRUST_PROXY: 'nginx', OPS_TOKEN: 'short', HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000', MAX_CONNECTIONS: '-1' }),
    ).toEqual([
      'HTTP_HEADERS_TIMEOUT_MS must be <= HTTP_REQUEST_TIMEOUT_MS (10000)',
      'OPS_TOKEN must be at least 16 characters',
      expect.stringMatching(/^TRUST_PROXY must be true, false, a number of hops, or addresses\/CIDRs .* got "nginx"$/),
      'MAX_CONNECTIONS must be a whole number, got "-1"',
    ]);
  });

  it('turns the demo on by default only where it gives nothing away, and shares only a generated key', () => {
    const real = { API_KEYS: KEY, DEVICE_JWT_SECRET: SECRET };
    // A newcomer's npm start: everything generated, default HOST 0.0.0.0.
    expect(loadConfig({}).demo).toEqual({ enabled: true, shareApiKey: true });
    // Real keys on the default (public) bind, NODE_ENV unset or staging: off.
    expect(loadConfig(real).demo).toEqual({ enabled: false, shareApiKey: false });
    expect(loadConfig({ ...real, NODE_ENV: 'staging' }).demo).toEqual({ enabled: false, shareApiKey: false });
    // Only the API key generated is not enough: the demo would mint tokens with the real secret.
    expect(loadConfig({ DEVICE_JWT_SECRET: SECRET }).demo.enabled).toBe(false);
    // Loopback-only: on, and the real key stays in the process unless asked.
    expect(loadConfig({ ...real, HOST: '127.0.0.1' }).demo).toEqual({ enabled: true, shareApiKey: false });
    expect(loadConfig({ ...real, HOST: '::1', DEMO_SHARE_API_KEY: 'true' }).demo).toEqual({ enabled: true, shareApiKey: true });
    // Explicit: on where asked; a key is never shared by a demo that is off.
    expect(loadConfig({ ...real, DEMO_ENABLED: 'true' }).demo).toEqual({ enabled: true, shareApiKey: false });
    expect(loadConfig({ ...real, DEMO_SHARE_API_KEY: 'true' }).demo).toEqual({ enabled: false, shareApiKey: false });
    expect(loadConfig({ ...real, NODE_ENV: 'production', HOST: '127.0.0.1' }).demo.enabled).toBe(false);
    expect(loadConfig({ DEMO_ENABLED: 'false' }).demo).toEqual({ enabled: false, shareApiKey: false });
  });
});
