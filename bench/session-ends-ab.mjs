// A burst of session ends (thousands of sockets closing at once: a load balancer restart, a network
// partition) through several builds' presence store, alternating, in one sitting, on a Redis of its
// own; and what it does to a handshake that arrives in the middle of it.
//   node bench/session-ends-ab.mjs <dist dir>... [--devices 10000] [--reps 3] [--partitions 1]
// Each run: a flushed Redis, `devices` sessions connected through the build's RedisPresenceStore
// (with `--partitions 1024`, the Cluster key layout on one Redis), then one disconnect([ref]) per
// session, all issued in the same moment as the gateway's disconnect handlers issue them, and one
// connect of a new device 5 ms later, on the app's two connections (`client`, `beats`). Reports the
// Redis CPU and commands per end (INFO, so the
// figure moves little with the other processes on the machine), the time until the last end was
// answered, and how long the handshake's presence write took.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from './lib/redis.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    devices: { type: 'string', default: '10000' },
    reps: { type: 'string', default: '3' },
    partitions: { type: 'string', default: '1' },
  },
});
const [DEVICES, REPS] = [values.devices, values.reps].map(Number);
const PARTITIONED = values.partitions === '1024';
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/session-ends-ab.mjs <dist dir>... [--devices N] [--reps R] [--partitions 1|1024]\n');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const INTERVAL = 120_000;
const TTL = 303_000;

/** Redis's CPU and the commands it ran (from a script or not), from INFO. */
async function info(server) {
  const { cpuMs, commands } = await server.stats();
  return { cpuMs, calls: Object.values(commands).reduce((a, b) => a + b, 0) };
}

async function run(server, dist) {
  await server.client.flushdb();
  // The connections as the app makes them (RedisConnection): `client` for commands, `beats` for
  // heartbeats and what the build sends with them.
  const { createClient } = require(join(resolve(dist), 'redis/redis-connection.js'));
  const target = { mode: 'url', url: `redis://127.0.0.1:${server.port}` };
  const client = createClient(target, 10_000, true);
  const beats = createClient(target, 10_000, true);
  await Promise.all([client.connect(), beats.connect()]);
  const { RedisPresenceStore } = require(join(resolve(dist), 'presence/redis-presence.store.js'));
  const { KeyLayout } = require(join(resolve(dist), 'redis/partitions.js'));
  const store = new RedisPresenceStore(client, new KeyLayout('ends:', PARTITIONED), 86_400_000, { beats });
  const refs = Array.from({ length: DEVICES }, (_, i) => ({ deviceId: `end-dev-${i}`, sessionId: `s-${i}`, userId: `end-user-${i % 3000}`, instanceId: 'ends-inst' }));
  const t = Date.now();
  for (let i = 0; i < DEVICES; i += 500) {
    await Promise.all(refs.slice(i, i + 500).map((r) => store.connect({ ...r, now: t, interval: INTERVAL, ttl: TTL })));
  }
  const before = await info(server);
  const started = performance.now();
  const now = Date.now();
  const ends = refs.map((r) => store.disconnect([r], now, 'client_close'));
  const handshake = new Promise((ok) => setTimeout(ok, 5)).then(async () => {
    const from = performance.now();
    await store.connect({ deviceId: 'newcomer', sessionId: 'new-s', userId: 'new-u', instanceId: 'ends-inst', now: Date.now(), interval: INTERVAL, ttl: TTL });
    return performance.now() - from;
  });
  const ended = (await Promise.all(ends)).reduce((a, b) => a + b, 0);
  const wallMs = performance.now() - started;
  const handshakeMs = await handshake;
  const after = await info(server);
  await Promise.all([client.quit(), beats.quit()]);
  if (ended !== DEVICES) throw new Error(`${ended} of ${DEVICES} sessions ended`);
  return {
    redisCpuPerEnd: ((after.cpuMs - before.cpuMs) / DEVICES) * 1000,
    commandsPerEnd: (after.calls - before.calls - 1) / DEVICES, // less the INFO of `before`
    wallMs,
    handshakeMs,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const server = await startRedis();
try {
  const results = new Map(positionals.map((t) => [t, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const dist of positionals) {
      const r = await run(server, dist);
      results.get(dist).push(r);
      process.stdout.write(
        `${dist}: Redis ${r.redisCpuPerEnd.toFixed(1)} µs and ${r.commandsPerEnd.toFixed(2)} commands per end, all ${DEVICES} answered in ${Math.round(r.wallMs)} ms, a handshake in the burst ${Math.round(r.handshakeMs)} ms\n`,
      );
    }
  }
  process.stdout.write(`\nmedians over ${REPS} runs, ${DEVICES} ends, ${PARTITIONED ? '1024 partitions' : 'one partition'}:\n`);
  for (const [dist, rs] of results) {
    const m = (key) => median(rs.map((r) => r[key]));
    process.stdout.write(
      `  ${dist}: Redis ${m('redisCpuPerEnd').toFixed(1)} µs per end, ${m('commandsPerEnd').toFixed(2)} commands per end, burst ${Math.round(m('wallMs'))} ms, handshake in it ${Math.round(m('handshakeMs'))} ms\n`,
    );
  }
} finally {
  await server.stop();
}
