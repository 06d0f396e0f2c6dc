// sweep (store level): how long retiring E expired sessions takes when H healthy ones are online, for
// growing H. The gateway's sweep is the built RedisPresenceStore.claimExpired in batches, exactly as
// SessionSweeper runs it (SWEEP_BATCH per call, until a batch comes back short). The baseline is
// what a hand-rolled server does without an expiry index: check every device it knows
// (`EXISTS presence:<id>`, pipelined) and clean up the ones whose key is gone. The store logic takes
// `now` from the caller, so "expired" sessions are simply recorded with an old `now`.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Redis from 'ioredis';
import { ROOT } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'sweep';
const require = createRequire(import.meta.url);
const RETENTION_MS = 30 * 86_400_000;
const SEED_CHUNK = 2_000;

export async function run(h, kind, p) {
  const redis = new Redis(h.redis.url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  try {
    const points = [];
    for (const healthy of p.healthy) {
      await h.redis.reset();
      const sweep = kind === 'gateway' ? gatewaySweep(redis, healthy, p.expired) : baselineSweep(redis, healthy, p.expired);
      await sweep.seed();
      const times = [];
      for (let rep = 0; rep < p.reps; rep++) {
        await sweep.expire(rep);
        const t0 = performance.now();
        const retired = await sweep.sweep();
        times.push(performance.now() - t0);
        if (retired !== p.expired) throw new Error(`${kind} sweep retired ${retired}, expected ${p.expired}`);
      }
      points.push({ healthy, expired: p.expired, reps: p.reps, medianMs: round(median(times), 2), minMs: round(Math.min(...times), 2) });
      h.log(`  ${kind}: ${p.expired} expired among ${healthy} healthy: ${points.at(-1).medianMs} ms (median of ${p.reps})`);
    }
    await h.redis.reset();
    const first = points[0].medianMs;
    const last = points.at(-1).medianMs;
    return {
      how: kind === 'gateway'
        ? "RedisPresenceStore.claimExpired(0, now, SWEEP_BATCH, live) until a short batch (the partition's expiry index: ZRANGEBYSCORE of the expired end)"
        : 'EXISTS presence:<id> for every known device (pipelined, 1000 per batch), then DEL/forget the dead ones',
      points,
      growth: round(last / first, 2),
    };
  } finally {
    redis.disconnect();
  }
}

function gatewaySweep(redis, healthy, expired) {
  const { RedisPresenceStore } = require(join(ROOT, 'dist/presence/redis-presence.store.js'));
  const { SWEEP_BATCH, SWEEP_MAX_BATCHES } = require(join(ROOT, 'dist/gateway/session-sweeper.service.js'));
  const store = new RedisPresenceStore(redis, 'bench-sweep:', RETENTION_MS);
  const now = Date.now();
  const start = (deviceId, at, ttl) =>
    store.connect({ deviceId, userId: `u-${deviceId}`, sessionId: randomUUID(), instanceId: 'gw-bench', platform: 'ios', now: at, interval: ttl / 2.5, ttl });
  return {
    async seed() {
      await inChunks(healthy, (i) => start(`ok-${i}`, now, 3_600_000));
    },
    async expire(rep) {
      // Recorded 10 s before `now` with a 5 s TTL: expired at now - 5 s.
      await inChunks(expired, (i) => start(`dead-${rep}-${i}`, now - 10_000, 5_000));
    },
    async sweep() {
      let retired = 0;
      for (let b = 0; b < SWEEP_MAX_BATCHES; b++) {
        const claimed = await store.claimExpired(0, now, SWEEP_BATCH, new Map([['gw-bench', 0]]));
        retired += claimed.length;
        if (claimed.length < SWEEP_BATCH) break;
      }
      return retired;
    },
  };
}

function baselineSweep(redis, healthy, expired) {
  const known = new Set();
  const key = (id) => `bench-baseline:presence:${id}`;
  return {
    async seed() {
      await inChunks(healthy, (i) => {
        known.add(`ok-${i}`);
        return redis.set(key(`ok-${i}`), randomUUID(), 'PX', 3_600_000);
      });
    },
    async expire(rep) {
      await inChunks(expired, (i) => {
        known.add(`dead-${rep}-${i}`);
        return redis.set(key(`dead-${rep}-${i}`), randomUUID(), 'PX', 1);
      });
      await sleep(20);
    },
    async sweep() {
      const ids = [...known];
      const dead = [];
      for (let i = 0; i < ids.length; i += 1_000) {
        const batch = ids.slice(i, i + 1_000);
        const pipeline = redis.pipeline();
        for (const id of batch) pipeline.exists(key(id));
        const res = await pipeline.exec();
        res.forEach(([err, n], j) => {
          if (err) throw err;
          if (n === 0) dead.push(batch[j]);
        });
      }
      if (dead.length) await redis.del(...dead.map(key));
      for (const id of dead) known.delete(id);
      return dead.length;
    },
  };
}

async function inChunks(count, fn) {
  for (let i = 0; i < count; i += SEED_CHUNK) {
    const jobs = [];
    for (let j = i; j < Math.min(count, i + SEED_CHUNK); j++) jobs.push(fn(j));
    await Promise.all(jobs);
  }
}
