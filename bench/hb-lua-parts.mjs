// What a batched heartbeat costs Redis, part by part: the same batch of heartbeats (64 per call,
// 7 arguments each, as RedisPresenceStore sends them) through scripts that each do one step more
// than the last, on the Redis at REDIS_URL (keys under `hbparts:`, removed at the end):
//   args     the loop over the arguments and one Lua function call per heartbeat, nothing else
//   keys     + building the presence and the device key names
//   set      + SET presence XX PX GET and the session check (what a heartbeat must do atomically)
//   set+hset + HSET of lastHeartbeatAt and expiresAt into the device hash (the gateway's hot path)
//   bare     one plain SET per heartbeat, pipelined, no script (the bare baseline's heartbeat)
// Redis CPU (INFO used_cpu_user + used_cpu_sys) and the scripts' own time (commandstats usec of
// EVALSHA) per heartbeat, per repetition; the difference between two rows is what the step costs.
//   node bench/hb-lua-parts.mjs [--reps 5] [--calls 800] [--batch 64]
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { parseInfo } from './lib/redis.mjs';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, calls: { type: 'string', default: '800' }, batch: { type: 'string', default: '64' } } });
const [REPS, CALLS, BATCH] = [values.reps, values.calls, values.batch].map(Number);
const DEVICES = 1_000;
const TTL = 300_000;
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

const script = (step) => `
local function beat(deviceId, sessionId, nowS, expiresS, ttlS, index, changed)
${step}
end
local out = {}
local i = 1
while i <= #ARGV do
  local changed = tonumber(ARGV[i + 6])
  out[#out + 1] = beat(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], changed)
  i = i + 7 + 2 * changed
end
return out`;
const keys = `local deviceKey = 'hbparts:device:' .. deviceId
  local presenceKey = 'hbparts:presence:' .. deviceId`;
const set = `${keys}
  if redis.call('SET', presenceKey, sessionId, 'XX', 'PX', ttlS, 'GET') ~= sessionId then return 0 end`;
const steps = {
  args: 'return 1',
  keys: `${keys}\n  return 1`,
  set: `${set}\n  return 1`,
  'set+hset': `${set}\n  redis.call('HSET', deviceKey, 'lastHeartbeatAt', nowS, 'expiresAt', expiresS)\n  return 1`,
};

const sessionOf = (d) => `hb-${d}-0123456789abcdef`;
async function seed() {
  const now = Date.now();
  const p = redis.pipeline();
  for (let d = 0; d < DEVICES; d++) {
    p.set(`hbparts:presence:dev-${d}`, sessionOf(d), 'PX', TTL);
    // A device hash the size of the gateway's (its fields as CONNECT writes them).
    p.hset(`hbparts:device:dev-${d}`, 'userId', `user-${d}`, 'platform', 'ios', 'sessionId', sessionOf(d), 'instanceId', 'instance-0',
      'connectedAt', now, 'lastHeartbeatAt', now, 'expiresAt', now + TTL, 'interval', 120_000, 'lastSeenAt', now, 'ix', now + TTL, 'seq', 1, 'eventSeq', 1, 'uv', 1);
  }
  await p.exec();
}
const batchArgs = (call) => {
  const now = Date.now();
  const args = [];
  for (let j = 0; j < BATCH; j++) {
    const d = (call * BATCH + j) % DEVICES;
    args.push(`dev-${d}`, sessionOf(d), String(now), String(now + TTL), String(TTL), '', '0');
  }
  return args;
};
async function reading() {
  const info = parseInfo((await redis.info('cpu')) + (await redis.info('commandstats')));
  return {
    cpuUs: (Number(info.used_cpu_user) + Number(info.used_cpu_sys)) * 1e6,
    evalUs: Number(/usec=(\d+)/.exec(info.cmdstat_evalsha ?? '')?.[1] ?? 0),
  };
}
// Calls go 8 at a time, so Redis works back to back (a mostly idle Redis pays more per command).
async function measure(send) {
  await redis.config('RESETSTAT');
  const before = await reading();
  for (let c = 0; c < CALLS; c += 8) await Promise.all(Array.from({ length: 8 }, (_, q) => send(c + q)));
  const after = await reading();
  const beats = CALLS * BATCH;
  return { cpu: (after.cpuUs - before.cpuUs) / beats, script: (after.evalUs - before.evalUs) / beats };
}

try {
  await seed();
  const shas = Object.fromEntries(await Promise.all(Object.entries(steps).map(async ([k, body]) => [k, await redis.script('LOAD', script(body))])));
  const rows = Object.fromEntries([...Object.keys(steps), 'bare'].map((k) => [k, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const k of Object.keys(steps)) rows[k].push(await measure((call) => redis.evalsha(shas[k], 0, ...batchArgs(call))));
    rows.bare.push(
      await measure((call) => {
        const p = redis.pipeline();
        for (let j = 0; j < BATCH; j++) {
          const d = (call * BATCH + j) % DEVICES;
          p.set(`hbparts:presence:dev-${d}`, sessionOf(d), 'PX', TTL);
        }
        return p.exec();
      }),
    );
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  process.stdout.write(`Redis µs per heartbeat, ${BATCH} per call, ${CALLS} calls, median of ${REPS} (each run in brackets)\n`);
  for (const [k, rs] of Object.entries(rows)) {
    const cpu = rs.map((r) => r.cpu);
    const scr = rs.map((r) => r.script);
    process.stdout.write(
      `  ${k.padEnd(9)} CPU ${median(cpu).toFixed(2)} (${cpu.map((v) => v.toFixed(2)).join(' ')})` +
        (k === 'bare' ? '\n' : `, inside the script ${median(scr).toFixed(2)} (${scr.map((v) => v.toFixed(2)).join(' ')})\n`),
    );
  }
} finally {
  for await (const found of redis.scanStream({ match: 'hbparts:*', count: 1000 })) if (found.length) await redis.del(...found);
  await redis.quit();
}
