// Redis CPU and commands per heartbeat of several builds' presence store (and the baseline's one
// SET), alternating, in one sitting, on a Redis of its own: Redis's CPU time is read from INFO, so
// the figure moves little with the other processes on the machine.
//   node bench/hb-redis-ab.mjs <dist dir | baseline>... [--devices 1000] [--beats 30000] [--reps 3] [--conc 64]
// Each run: a flushed Redis, `devices` sessions connected through the build's RedisPresenceStore,
// a warm-up of 2,000 heartbeats, then `beats` heartbeats with `conc` in flight (auto-pipelined, as
// the gateway's heartbeat connection is); the baseline does `SET presence:<id> <sid> PX <ttl>`.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { freePort } from './lib/procs.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    devices: { type: 'string', default: '1000' },
    beats: { type: 'string', default: '30000' },
    reps: { type: 'string', default: '3' },
    conc: { type: 'string', default: '64' },
  },
});
const [DEVICES, BEATS, REPS, CONC] = [values.devices, values.beats, values.reps, values.conc].map(Number);
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/hb-redis-ab.mjs <dist dir | baseline>... [--devices N] [--beats N] [--reps R] [--conc C]\n');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const INTERVAL = 120_000;
const TTL = 303_000;

async function info(redis) {
  const text = (await redis.info('cpu')) + (await redis.info('commandstats'));
  const num = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  const calls = [...text.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  return { cpuMs: (num('used_cpu_user') + num('used_cpu_sys')) * 1000, calls };
}

async function run(redis, target) {
  await redis.flushdb();
  const client = new Redis({ port: redis.options.port, host: '127.0.0.1', enableAutoPipelining: true, lazyConnect: true });
  await client.connect();
  let beat;
  const ids = Array.from({ length: DEVICES }, (_, i) => `hb-dev-${i}`);
  const sessions = ids.map((id) => `${id}-s1`);
  if (target === 'baseline') {
    beat = (i) => client.set(`presence:${ids[i]}`, sessions[i], 'PX', TTL);
  } else {
    const { RedisPresenceStore } = require(join(resolve(target), 'presence/redis-presence.store.js'));
    const store = new RedisPresenceStore(client, 'hb:', 86_400_000, { beats: client });
    const t = Date.now();
    for (let i = 0; i < DEVICES; i++) {
      await store.connect({ deviceId: ids[i], userId: `hb-user-${i}`, sessionId: sessions[i], instanceId: 'hb-inst', now: t, interval: INTERVAL, ttl: TTL });
    }
    // What each session's record holds, kept as SessionService keeps it (builds before a field ignore it).
    const { indexAfter } = require(join(resolve(target), 'presence/presence.types.js'));
    const expiresAt = new Array(DEVICES).fill(t + TTL);
    const indexAt = new Array(DEVICES).fill(t + TTL);
    beat = (i, now) => {
      const u = { deviceId: ids[i], sessionId: sessions[i], instanceId: 'hb-inst', now, interval: INTERVAL, ttl: TTL, grace: 0, recordedInterval: INTERVAL, recordedExpiresAt: expiresAt[i], recordedIndexAt: indexAt[i] };
      if (indexAfter) indexAt[i] = indexAfter(u);
      expiresAt[i] = now + TTL;
      return store.heartbeat(u);
    };
  }
  const drive = async (count) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = next++;
        const ok = await beat(n % DEVICES, Date.now());
        if (ok === false) throw new Error('heartbeat refused');
      }
    };
    await Promise.all(Array.from({ length: CONC }, worker));
  };
  await drive(2_000);
  const before = await info(redis);
  const started = performance.now();
  await drive(BEATS);
  const wallMs = performance.now() - started;
  const after = await info(redis);
  await client.quit();
  return {
    redisCpuPer1k: ((after.cpuMs - before.cpuMs) / BEATS) * 1000,
    commandsPerBeat: (after.calls - before.calls - 2) / BEATS,
    beatsPerSecond: (BEATS / wallMs) * 1000,
  };
}

const port = await freePort();
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
try {
  const redis = new Redis({ port, host: '127.0.0.1' });
  await new Promise((ok, fail) => {
    redis.once('ready', ok);
    setTimeout(() => fail(new Error('redis-server did not start')), 10_000).unref();
  });
  const results = new Map(positionals.map((t) => [t, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const target of positionals) {
      const r = await run(redis, target);
      results.get(target).push(r);
      process.stdout.write(`${target}: Redis CPU-ms per 1k ${r.redisCpuPer1k.toFixed(1)}, commands per beat ${r.commandsPerBeat.toFixed(2)}, ${Math.round(r.beatsPerSecond)}/s\n`);
    }
  }
  process.stdout.write('\nmedian Redis CPU-ms per 1k heartbeats:\n');
  for (const [target, rs] of results) {
    const sorted = rs.map((r) => r.redisCpuPer1k).sort((a, b) => a - b);
    process.stdout.write(`  ${target}: ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} (${sorted.map((v) => v.toFixed(1)).join(', ')}), commands per beat ${rs[0].commandsPerBeat.toFixed(2)}\n`);
  }
  await redis.quit();
} finally {
  server.kill();
}
