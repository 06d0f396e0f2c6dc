// Redis CPU of one large publish through the built store (dist/: npm run build first), on the
// Redis at REDIS_URL (default 127.0.0.1:6379) under a key prefix of its own (deleted afterwards):
// `targets` devices connected through RedisPresenceStore, then `reps` publishes to all of them
// streamed as the gateway streams a fan-out (onDurable), each with Redis's CPU time (INFO cpu)
// and the wall time to the last call answered.
//   node bench/publish-redis-cost.cjs [targets 10000] [reps 5]
'use strict';
const Redis = require('ioredis');
const { createClient } = require('../dist/redis/redis-connection');
const { KeyLayout } = require('../dist/redis/partitions');
const { RedisNotificationStore } = require('../dist/notifications/redis-notification.store');
const { RedisPresenceStore } = require('../dist/presence/redis-presence.store');

const DAY = 86_400_000;

async function main() {
  const targets = Number(process.argv[2] ?? 10_000);
  const reps = Number(process.argv[3] ?? 5);
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = createClient({ mode: 'url', url }, 5_000, true);
  await redis.connect();
  const admin = new Redis(url);
  const prefix = `bench-publish-cost-${Date.now()}:`;
  const keys = new KeyLayout(prefix, false);
  const presence = new RedisPresenceStore(redis, keys, 30 * DAY);
  const store = new RedisNotificationStore(redis, keys, DAY);
  const cpuSeconds = async () => {
    const info = await admin.info('cpu');
    return Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
  };
  try {
    const now = Date.now();
    const devices = Array.from({ length: targets }, (_, i) => `dev-${i}`);
    for (let i = 0; i < targets; i += 500) {
      await Promise.all(devices.slice(i, i + 500).map((d) => presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 60_000, ttl: 600_000 })));
    }
    for (let rep = 0; rep < reps; rep++) {
      const at = Date.now();
      const payload = { id: `n-${rep}-${at}`, data: { n: rep }, createdAt: at };
      let handed = 0;
      const before = await cpuSeconds();
      const started = performance.now();
      await store.publish({
        payload,
        payloadJson: JSON.stringify(payload),
        deviceIds: devices,
        effectiveExpiresAt: at + 60_000,
        keepOffline: false,
        maxInbox: 1_000,
        retentionMs: DAY,
        now: at,
        ackDeadlineAt: at + 10_000,
        fallback: 'none',
        leaseMs: 30_000,
        onDurable: (online) => (handed += online.length),
      });
      const wallMs = performance.now() - started;
      const redisMs = ((await cpuSeconds()) - before) * 1000;
      process.stdout.write(`publish to ${targets}: ${wallMs.toFixed(1)} ms to the last call answered, Redis CPU ${redisMs.toFixed(1)} ms (${((redisMs * 1000) / targets).toFixed(2)} us per target), ${handed} handed over\n`);
    }
  } finally {
    for await (const found of admin.scanStream({ match: `${prefix}*`, count: 1000 })) if (found.length) await admin.del(...found);
    redis.disconnect();
    admin.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
