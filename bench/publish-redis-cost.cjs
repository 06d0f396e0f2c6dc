// Redis CPU of one large publish and of its acks through a built store (dist/ by default: npm run
// build first; or another build's directory), on the Redis at REDIS_URL (default 127.0.0.1:6379)
// under a key prefix of its own (deleted afterwards): `targets` devices connected through
// RedisPresenceStore, then `reps` rounds of a publish to all of them streamed as the gateway
// streams a fan-out (onDurable), then every target's ack in batches of ACK_BATCH_MAX as the
// gateway records them (live sends, the acking session's user known). Per round: Redis's CPU
// time (INFO cpu) and this process's (the store's client side) per target, and the wall time to
// the last publish call answered; the last round's commands per target (INFO commandstats).
// Medians at the end. Several builds alternate round by round, so the machine's drift falls on
// all of them.
//   node bench/publish-redis-cost.cjs [targets 10000] [reps 5] [build dir (default dist)...]
'use strict';
const { resolve } = require('node:path');
const Redis = require('ioredis');
const { dropKeys } = require('./lib/build-store.cjs');

const DAY = 86_400_000;

function load(dir) {
  const at = (m) => require(resolve(dir, m));
  return {
    createClient: at('redis/redis-connection').createClient,
    KeyLayout: at('redis/partitions').KeyLayout,
    RedisNotificationStore: at('notifications/redis-notification.store').RedisNotificationStore,
    RedisPresenceStore: at('presence/redis-presence.store').RedisPresenceStore,
    ACK_BATCH_MAX: at('notifications/delivery.service').ACK_BATCH_MAX ?? 500,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const targets = Number(process.argv[2] ?? 10_000);
  const reps = Number(process.argv[3] ?? 5);
  const dirs = process.argv.length > 4 ? process.argv.slice(4) : [resolve(__dirname, '../dist')];
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const admin = new Redis(url);
  const stats = async () => {
    const text = (await admin.info('cpu')) + (await admin.info('commandstats'));
    const cpu = Number(/used_cpu_user:([\d.]+)/.exec(text)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(text)[1]);
    const calls = Object.fromEntries([...text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
    return { cpu, calls };
  };
  const perTarget = (before, after) => {
    const calls = {};
    for (const [name, n] of Object.entries(after.calls)) {
      if (name === 'info') continue; // this harness's own readings
      const d = n - (before.calls[name] ?? 0);
      if (d > 0) calls[name] = Math.round((d / targets) * 100) / 100;
    }
    return { redisUs: ((after.cpu - before.cpu) * 1e6) / targets, calls };
  };
  const builds = [];
  try {
    for (const [i, dir] of dirs.entries()) {
      const m = load(dir);
      const redis = m.createClient({ mode: 'url', url }, 5_000, true);
      await redis.connect();
      const prefix = `bench-publish-cost-${Date.now()}-${i}:`;
      const keys = new m.KeyLayout(prefix, false);
      const presence = new m.RedisPresenceStore(redis, keys, 30 * DAY);
      const store = new m.RedisNotificationStore(redis, keys, DAY);
      const now = Date.now();
      const devices = Array.from({ length: targets }, (_, d) => `dev-${d}`);
      for (let d = 0; d < targets; d += 500) {
        await Promise.all(devices.slice(d, d + 500).map((id) => presence.connect({ deviceId: id, sessionId: `s-${id}`, userId: 'u', instanceId: 'gw', now, interval: 60_000, ttl: 600_000 })));
      }
      builds.push({ dir, m, redis, prefix, store, devices, rounds: [] });
    }
    for (let rep = 0; rep < reps; rep++) {
      for (const b of builds) {
        const at = Date.now();
        const payload = { id: `n-${rep}-${at}`, data: { n: rep }, createdAt: at };
        let handed = 0;
        const s0 = await stats();
        const c0 = process.cpuUsage();
        const started = performance.now();
        await b.store.publish({
          payload,
          payloadJson: JSON.stringify(payload),
          deviceIds: b.devices,
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
        const c1 = process.cpuUsage(c0);
        const s1 = await stats();
        const acks = b.devices.map((deviceId) => ({ payload: { id: payload.id }, deviceId, userId: 'u', fromInbox: false }));
        const c2 = process.cpuUsage();
        for (let a = 0; a < acks.length; a += b.m.ACK_BATCH_MAX) await b.store.ackMany(acks.slice(a, a + b.m.ACK_BATCH_MAX), Date.now());
        const c3 = process.cpuUsage(c2);
        const s2 = await stats();
        const publish = { ...perTarget(s0, s1), clientUs: (c1.user + c1.system) / targets };
        const ack = { ...perTarget(s1, s2), clientUs: (c3.user + c3.system) / targets };
        b.rounds.push({ publish, ack });
        process.stdout.write(
          `${b.dir}: publish to ${targets}: ${wallMs.toFixed(1)} ms to the last call answered, ${handed} handed over; ` +
            `per target, Redis CPU publish ${publish.redisUs.toFixed(1)} us, acks ${ack.redisUs.toFixed(1)} us; ` +
            `this process publish ${publish.clientUs.toFixed(1)} us, acks ${ack.clientUs.toFixed(1)} us\n`,
        );
      }
    }
    process.stdout.write(`\nmedians per target over ${reps} rounds (Redis CPU; this process's CPU), and the last round's commands:\n`);
    for (const b of builds) {
      const pick = (kind, field) => median(b.rounds.map((r) => r[kind][field])).toFixed(1);
      const last = b.rounds.at(-1);
      process.stdout.write(`  ${b.dir}: publish ${pick('publish', 'redisUs')} us; ${pick('publish', 'clientUs')} us; ${JSON.stringify(last.publish.calls)}\n`);
      process.stdout.write(`  ${' '.repeat(b.dir.length)}  acks    ${pick('ack', 'redisUs')} us; ${pick('ack', 'clientUs')} us; ${JSON.stringify(last.ack.calls)}\n`);
    }
  } finally {
    for (const b of builds) {
      await dropKeys(admin, b.prefix);
      b.redis.disconnect();
    }
    admin.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
