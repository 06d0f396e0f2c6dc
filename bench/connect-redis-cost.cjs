// Session starts through a built RedisPresenceStore (dist/ by default: npm run build first; or another
// build's directory), on the Redis at REDIS_URL, under a key prefix of its own (deleted afterwards):
// `devices` devices, each of its own user, connect in calls of 500 at a time. What they cost
// Redis is read outside: with bench/redis-instructions.mjs at two sizes, the difference divided by
// the difference in devices is Redis's instructions per session start. `--keep` leaves the keys
// (a throw-away Redis: deleting them would be counted too).
//   node bench/connect-redis-cost.cjs [build dir (default dist)] [devices 1000] [--keep]
//   node bench/redis-instructions.mjs node bench/connect-redis-cost.cjs dist 4000 --keep
'use strict';
const { buildArgs, connectClient, dropKeys } = require('./lib/build-store.cjs');

const DAY = 86_400_000;

async function main() {
  const { keep, count: devices, at } = buildArgs(process.argv.slice(2), 1_000);
  const { KeyLayout } = at('redis/partitions');
  const { RedisPresenceStore } = at('presence/redis-presence.store');
  const redis = await connectClient(at, 5_000);
  const prefix = `bench-connect-cost-${Date.now()}:`;
  try {
    const presence = new RedisPresenceStore(redis, new KeyLayout(prefix, false), 30 * DAY);
    const now = Date.now();
    for (let d = 0; d < devices; d += 500) {
      const ids = Array.from({ length: Math.min(500, devices - d) }, (_, i) => `dev-${d + i}`);
      await Promise.all(ids.map((id) => presence.connect({ deviceId: id, sessionId: `s-${id}`, userId: `u-${id}`, instanceId: 'gw', now, interval: 60_000, ttl: 600_000 })));
    }
    process.stdout.write(`${devices} sessions started\n`);
  } finally {
    if (!keep) await dropKeys(redis, prefix);
    await redis.quit();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
