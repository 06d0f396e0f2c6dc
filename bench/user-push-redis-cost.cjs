// Redis's work for the push case "a user with 3 devices", through a built store (dist/ by default:
// npm run build first; or another build's directory), on the Redis at REDIS_URL (default
// 127.0.0.1:6379) under a key prefix of its own (deleted afterwards): 3 online devices of one user,
// then `posts` publishes to that user as a POST makes them (the API key's rate limit and the
// user's devices looked up in the write) each followed by the 3 acks in one call, as the gateway
// records a window's acks. Meant
// for bench/redis-instructions.mjs at two sizes: the difference over the difference in posts is
// Redis's instructions per POST and its acks, the same count on a busy machine. `--keep` leaves
// the keys (on redis-instructions' throw-away Redis: deleting them would be counted too).
//   node bench/redis-instructions.mjs node bench/user-push-redis-cost.cjs dist 100 --keep
//   node bench/redis-instructions.mjs node bench/user-push-redis-cost.cjs dist 600 --keep
'use strict';
const { buildArgs, connectClient, dropKeys } = require('./lib/build-store.cjs');

const DAY = 86_400_000;

async function main() {
  const { keep, count: posts, at } = buildArgs(process.argv.slice(2), 1_000);
  const { KeyLayout } = at('redis/partitions');
  const { RedisPresenceStore } = at('presence/redis-presence.store');
  const { RedisNotificationStore } = at('notifications/redis-notification.store');
  const { mintNotificationId } = at('notifications/notification-id');
  const { RedisRateLimiter } = at('auth/redis-rate-limiter');
  const redis = await connectClient(at, 60_000);
  const prefix = `bench-user-push-${Date.now()}:`;
  const keys = new KeyLayout(prefix, false);
  try {
    const presence = new RedisPresenceStore(redis, keys, 30 * DAY);
    const store = new RedisNotificationStore(redis, keys, DAY);
    // The rules ApiAuthGuard folds into a publish: the caller's failed authentications (the gate,
    // only read) and the API key's requests (counted), limits the bench's gateway runs with.
    const limiter = new RedisRateLimiter(redis, keys);
    const gate = { name: 'auth-failures', limit: 20, windowMs: 60_000 };
    const counted = { name: 'api-key', limit: 100_000, windowMs: 60_000 };
    const devices = ['d0', 'd1', 'd2'];
    const started = Date.now();
    for (const deviceId of devices) {
      await presence.connect({ deviceId, sessionId: `s-${deviceId}`, userId: 'u', instanceId: 'gw', now: started, interval: 60_000, ttl: 100 * 60_000 });
    }
    for (let i = 0; i < posts; i++) {
      const now = Date.now();
      const payload = { id: mintNotificationId(keys, 0), data: { i }, createdAt: now };
      const result = await store.publish({
        payload,
        payloadJson: JSON.stringify(payload),
        deviceIds: [],
        effectiveExpiresAt: now + 10_000,
        keepOffline: false,
        maxInbox: 100,
        retentionMs: DAY,
        now,
        ackDeadlineAt: now + 10_000,
        fallback: 'none',
        leaseMs: 30_000,
        users: { ids: ['u'], forgetBefore: now - DAY, maxTargets: 200 },
        admit: limiter.fold(gate, '127.0.0.1', counted, 'bench-key', now),
      });
      if (result.kind !== 'accepted' || result.online.length !== devices.length) throw new Error(`unexpected publish result: ${JSON.stringify(result)}`);
      await store.ackMany(devices.map((deviceId) => ({ payload: { id: payload.id }, deviceId, userId: 'u', fromInbox: false })), Date.now());
    }
  } finally {
    if (!keep) await dropKeys(redis, prefix);
    redis.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
