import { randomBytes } from 'node:crypto';
import { ConfigError, EnvReader } from './env-reader';
import { HttpSettings, readHttpSettings } from './http-settings';
import { HostRule, readWebPushEndpointHosts } from '../push/endpoint-hosts';
import { WebhookSettings, readWebhookSettings } from './webhook-settings';
import { PushProviderSettings, readPushProviderSettings } from './push-provider-settings';
import { KeyLayout } from '../redis/partitions';

export type JwtVerification =
  | { kind: 'secret'; secret: string; algorithms: ['HS256'] }
  | { kind: 'publicKey'; publicKey: string; algorithms: ['RS256'] | ['ES256'] };

/** How to reach Redis: a URL, a Sentinel-monitored master, or a Cluster; none means embedded. */
export type RedisTarget =
  | { mode: 'url'; url: string }
  | { mode: 'sentinel'; sentinels: { host: string; port: number }[]; name: string; password?: string }
  | { mode: 'cluster'; nodes: { host: string; port: number }[]; password?: string };

export interface HeartbeatSettings {
  interval: number;
  min: number;
  max: number;
}

/**
 * The web demo mints device tokens for anyone who opens it, and may hand out the first API key.
 * It is on by default only where that gives nothing away: outside production, and when either
 * every credential was generated for this run (a newcomer's `npm start`) or the listener is
 * loopback-only. The key is shared by default only when it was generated for this run.
 */
export interface DemoSettings {
  enabled: boolean;
  shareApiKey: boolean;
}

/** Everything the gateway reads from the environment, validated once at start. */
export class AppConfig {
  readonly nodeEnv!: string;
  readonly port!: number;
  readonly host!: string;
  readonly redis!: RedisTarget | undefined;
  readonly redisPrefix!: string;
  readonly apiKeys!: readonly string[];
  readonly jwt!: JwtVerification;
  /** How long a session may outlive its device token's expiry before it is ended (`token_expired`). */
  readonly tokenExpiryGraceMs!: number;
  /** With a value, a device token expires at most this long after its `iat`, whatever its `exp` says. */
  readonly deviceTokenMaxAgeMs!: number | undefined;
  readonly heartbeat!: HeartbeatSettings;
  /** Added to 2.5 heartbeat intervals for the presence TTL: room for TCP retransmissions on lossy links. */
  readonly heartbeatTtlSlackMs!: number;
  readonly sweepIntervalMs!: number;
  readonly maxPayloadBytes!: number;
  readonly logLevel!: string;
  /** `pretty`: one readable line per entry (development); `json`: pino's JSON lines (production, log shippers). */
  readonly logFormat!: 'pretty' | 'json';
  readonly ackTimeoutMs!: number;
  /**
   * Acks received within this many ms of the first one are recorded in one Redis call (0: those of
   * one event-loop turn). At 1k POST/s each ack came alone and cost a script call of its own;
   * with 2 ms Redis's CPU per POST read 12-20 % lower (docs/performance.md, twenty-fourth round).
   */
  readonly ackBatchWindowMs!: number;
  readonly apiRateLimit!: number;
  readonly apiRateWindowMs!: number;
  readonly apiAuthFailuresPerMinute!: number;
  readonly socketEventsPerSecond!: number;
  readonly socketMaxBufferedBytes!: number;
  readonly slowConsumerGraceMs!: number;
  readonly loadShedDelayMs!: number;
  /** /v1 requests are shed while every one let in over half a second waited longer than this (0: never). */
  readonly restQueueTargetMs!: number;
  readonly deviceRetentionMs!: number;
  readonly inboxMaxSize!: number;
  readonly notificationRetentionMs!: number;
  /** How long events for backends stay in the event log (GET /v1/events). */
  readonly eventRetentionMs!: number;
  /** How long a device.offline (client_close, heartbeat_timeout, instance_lost, server_shutdown) is held for flap suppression; 0: off. */
  readonly presenceEventGraceMs!: number;
  readonly idempotencyWindowMs!: number;
  readonly redisCommandTimeoutMs!: number;
  readonly redisProbeIntervalMs!: number;
  readonly shutdownGraceMs!: number;
  readonly demo!: DemoSettings;
  readonly http!: HttpSettings;
  /** Hosts a Web Push subscription's endpoint may name (WEBPUSH_ENDPOINT_HOSTS). */
  readonly webPushEndpointHosts!: readonly HostRule[];
  readonly webhooks!: WebhookSettings;
  /** Native push providers (Web Push, APNs, FCM) and how they retry; a provider without settings is off. */
  readonly pushProviders!: PushProviderSettings;
  readonly instanceId!: string;
  /** Keys and secrets generated because none were given (development only), to print once. */
  readonly generated!: Readonly<Record<string, string>>;

  constructor(values: Omit<AppConfig, 'isProduction' | 'keys'>) {
    Object.assign(this, values);
  }

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }

  private layout?: KeyLayout;

  /** Where Redis keys live: partitioned by hash tag on a Cluster, one partition otherwise. */
  get keys(): KeyLayout {
    this.layout ??= new KeyLayout(this.redisPrefix, this.redis?.mode === 'cluster');
    return this.layout;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const r = new EnvReader(env);
  const nodeEnv = r.string('NODE_ENV') ?? 'development';
  const production = nodeEnv === 'production';
  const generated: Record<string, string> = {};

  let apiKeys = r.list('API_KEYS');
  if (apiKeys?.some((k) => k.length < 16)) r.fail('API_KEYS', 'every key must be at least 16 characters');
  if (!apiKeys || apiKeys.length === 0) {
    if (production) r.fail('API_KEYS', 'is required when NODE_ENV=production');
    const devKey = `dev-${randomBytes(18).toString('base64url')}`;
    apiKeys = [devKey];
    generated.API_KEYS = devKey;
  }

  const jwt = readJwt(r, production, generated);

  const interval = r.int('HEARTBEAT_INTERVAL_MS', 25_000, { min: 100 });
  const min = r.int('HEARTBEAT_MIN_MS', Math.min(5_000, interval), { min: 100 });
  const max = r.int('HEARTBEAT_MAX_MS', Math.max(300_000, interval), { min: 100 });
  if (min > interval) r.fail('HEARTBEAT_MIN_MS', `must be <= HEARTBEAT_INTERVAL_MS (${interval})`);
  if (max < interval) r.fail('HEARTBEAT_MAX_MS', `must be >= HEARTBEAT_INTERVAL_MS (${interval})`);

  const logLevel = r.string('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) r.fail('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const logFormat = r.string('LOG_FORMAT') ?? (production ? 'json' : 'pretty');
  if (logFormat !== 'pretty' && logFormat !== 'json') r.fail('LOG_FORMAT', 'must be pretty or json');

  const redis = readRedis(r);
  const redisPrefix = r.string('REDIS_PREFIX') ?? 'push:';
  // The gateway adds hash tags itself (src/redis/partitions.ts): on a Cluster each device's keys
  // carry its partition's tag, so a tag in the prefix would put every key in one slot again.
  if (/[{}]/.test(redisPrefix)) r.fail('REDIS_PREFIX', 'must not contain { or }: on a Cluster the gateway adds a partition hash tag to each key (README "Redis key layout")');

  const host = r.string('HOST') ?? '0.0.0.0';
  const config = new AppConfig({
    nodeEnv,
    port: r.int('PORT', 3000, { min: 0, max: 65_535 }),
    host,
    redis,
    redisPrefix,
    apiKeys,
    jwt,
    tokenExpiryGraceMs: r.int('TOKEN_EXPIRY_GRACE_MS', 30_000, { min: 0, max: 86_400_000 }),
    deviceTokenMaxAgeMs: r.duration('DEVICE_TOKEN_MAX_AGE', { minMs: 1_000, maxMs: 366 * 86_400_000 }),
    heartbeat: { interval, min, max },
    heartbeatTtlSlackMs: r.int('HEARTBEAT_TTL_SLACK_MS', 3_000, { min: 0, max: 600_000 }),
    sweepIntervalMs: r.int('SWEEP_INTERVAL_MS', 5_000, { min: 50 }),
    maxPayloadBytes: r.int('MAX_PAYLOAD_BYTES', 4_096, { min: 256, max: 1_048_576 }),
    logLevel,
    logFormat: logFormat === 'json' ? 'json' : 'pretty',
    ackTimeoutMs: r.int('ACK_TIMEOUT_MS', 10_000, { min: 100 }),
    ackBatchWindowMs: r.int('ACK_BATCH_WINDOW_MS', 2, { min: 0, max: 1_000 }),
    apiRateLimit: r.int('API_RATE_LIMIT', 6_000, { min: 1, max: 10_000_000 }),
    apiRateWindowMs: r.int('API_RATE_WINDOW_MS', 60_000, { min: 1_000 }),
    apiAuthFailuresPerMinute: r.int('API_AUTH_FAILURES_PER_MINUTE', 20, { min: 1, max: 10_000_000 }),
    socketEventsPerSecond: r.int('SOCKET_EVENTS_PER_SECOND', 10, { min: 1 }),
    socketMaxBufferedBytes: r.int('SOCKET_MAX_BUFFERED_BYTES', 1_048_576, { min: 16_384 }),
    slowConsumerGraceMs: r.int('SLOW_CONSUMER_GRACE_MS', 5_000, { min: 100 }),
    loadShedDelayMs: r.int('LOAD_SHED_DELAY_MS', 1_000, { min: 0 }),
    restQueueTargetMs: r.int('REST_QUEUE_TARGET_MS', 100, { min: 0 }),
    deviceRetentionMs: r.int('DEVICE_RETENTION_DAYS', 30, { min: 1, max: 3650 }) * 86_400_000,
    inboxMaxSize: r.int('INBOX_MAX_SIZE', 1_000, { min: 1, max: 100_000 }),
    notificationRetentionMs: r.int('NOTIFICATION_RETENTION_HOURS', 24, { min: 1, max: 24 * 90 }) * 3_600_000,
    eventRetentionMs: r.int('EVENT_RETENTION_HOURS', 24, { min: 1, max: 24 * 30 }) * 3_600_000,
    presenceEventGraceMs: r.int('PRESENCE_EVENT_GRACE_MS', 5_000, { min: 0, max: 600_000 }),
    idempotencyWindowMs: r.int('IDEMPOTENCY_WINDOW_SECONDS', 86_400, { min: 300, max: 7 * 86_400 }) * 1000,
    redisCommandTimeoutMs: r.int('REDIS_COMMAND_TIMEOUT_MS', 1_000, { min: 50 }),
    redisProbeIntervalMs: r.int('REDIS_PROBE_INTERVAL_MS', 5_000, { min: 50 }),
    shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 8_000, { min: 0 }),
    demo: readDemo(r, production, host, generated),
    http: readHttpSettings(r, production),
    webPushEndpointHosts: readWebPushEndpointHosts(r),
    webhooks: readWebhookSettings(r, production, generated),
    pushProviders: readPushProviderSettings(r),
    instanceId: r.string('INSTANCE_ID') ?? `gw-${randomBytes(4).toString('hex')}`,
    generated,
  });
  r.throwIfFailed();
  return config;
}

function readDemo(r: EnvReader, production: boolean, host: string, generated: Record<string, string>): DemoSettings {
  const throwaway = generated.API_KEYS !== undefined && generated.DEVICE_JWT_SECRET !== undefined;
  const enabled = r.bool('DEMO_ENABLED', !production && (throwaway || isLoopback(host)));
  const shareApiKey = r.bool('DEMO_SHARE_API_KEY', generated.API_KEYS !== undefined);
  return { enabled, shareApiKey: enabled && shareApiKey };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function readRedis(r: EnvReader): RedisTarget | undefined {
  const url = r.string('REDIS_URL');
  const sentinels = r.hostList('REDIS_SENTINELS');
  const cluster = r.hostList('REDIS_CLUSTER_NODES');
  const password = r.string('REDIS_PASSWORD');
  if ([url, sentinels, cluster].filter(Boolean).length > 1) {
    r.fail('REDIS_URL', 'set only one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES');
  }
  if (url) {
    if (!/^rediss?:\/\//.test(url)) r.fail('REDIS_URL', 'must start with redis:// or rediss://');
    return { mode: 'url', url };
  }
  if (sentinels) {
    const name = r.string('REDIS_SENTINEL_NAME');
    if (!name) r.fail('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS');
    return { mode: 'sentinel', sentinels, name: name ?? '', password };
  }
  if (cluster) return { mode: 'cluster', nodes: cluster, password };
  return undefined;
}

function readJwt(r: EnvReader, production: boolean, generated: Record<string, string>): JwtVerification {
  const secret = r.string('DEVICE_JWT_SECRET');
  const publicKey = r.string('DEVICE_JWT_PUBLIC_KEY');
  if (secret && publicKey) {
    r.fail('DEVICE_JWT_SECRET', 'set either DEVICE_JWT_SECRET or DEVICE_JWT_PUBLIC_KEY, not both');
  }
  if (publicKey) {
    const alg = r.publicKeyAlgorithm('DEVICE_JWT_PUBLIC_KEY', publicKey);
    const pem = publicKey.replace(/\\n/g, '\n');
    return { kind: 'publicKey', publicKey: pem, algorithms: alg === 'ES256' ? ['ES256'] : ['RS256'] };
  }
  if (secret) {
    // RFC 7518 3.2: an HS256 key must be at least as long as the hash output (256 bits).
    if (Buffer.byteLength(secret) < 32) r.fail('DEVICE_JWT_SECRET', 'must be at least 32 bytes');
    return { kind: 'secret', secret, algorithms: ['HS256'] };
  }
  if (production) r.fail('DEVICE_JWT_SECRET', 'or DEVICE_JWT_PUBLIC_KEY is required when NODE_ENV=production');
  const devSecret = randomBytes(32).toString('base64url');
  generated.DEVICE_JWT_SECRET = devSecret;
  return { kind: 'secret', secret: devSecret, algorithms: ['HS256'] };
}

export { ConfigError };
