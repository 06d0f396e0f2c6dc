// CPU per POST of several gateway builds (and the baseline), closed loop, alternating, in one sitting:
// on a shared machine the bench's open-loop CPU per POST moves with how far behind the server is
// (a server that falls behind handles requests in batches, cheaper each), a closed loop does not.
//   node bench/post-ab.mjs <dist dir | baseline | baseline-durable>... [--posts 3000] [--reps 3] [--conc 8] [--cpu-prof DIR] [--log-level warn]
// --cpu-prof DIR: each server's CPU profile over exactly the measured POSTs (bench/lib/probe.cjs),
// written to DIR/<n>-<target>.cpuprofile, for bench/profile-summary.mjs.
// --log-level: the gateway's LOG_LEVEL (default warn; at info, the default, it logs a line per request).
// POST_AB_NODE_ARGS="--trace-gc" (say) adds flags to each server's node; POST_AB_CHILD_OUT=1 shows
// the servers' stdout (what --trace-gc prints).
// `baseline-durable`: the baseline with the Redis round trips of the gateway's contract (a shared
// rate limit and the inbox before the 202, a receipt per ack: bench/baseline-server.mjs).
// Each run: a fresh server on the Redis at REDIS_URL (default 127.0.0.1:6379) under its own key
// prefix (deleted afterwards), one device connected that acks, 500 warm-up POSTs, then `posts`
// POSTs with `conc` in flight; server CPU (utime+stime from /proc) over the measured POSTs.
import { spawn } from 'node:child_process';
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import { PROBE, probeCommand, ROOT } from './lib/harness.mjs';
import { freePort } from './lib/procs.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { posts: { type: 'string', default: '3000' }, reps: { type: 'string', default: '3' }, conc: { type: 'string', default: '8' }, 'cpu-prof': { type: 'string' }, 'log-level': { type: 'string', default: 'warn' } },
});
const [POSTS, REPS, CONC] = [Number(values.posts), Number(values.reps), Number(values.conc)];
const PROFILE_DIR = values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined;
if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
let runs = 0;
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/post-ab.mjs <dist dir | baseline | baseline-durable>... [--posts N] [--reps R] [--conc C]\n');
  process.exit(2);
}
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const secret = randomBytes(32).toString('hex');
const apiKey = `bench-${randomBytes(12).toString('hex')}`;
const TICKS_PER_SECOND = 100;
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SECOND;
};

/** Read and write system calls the process made so far (writev, sendmsg and the like count as writes). */
const syscalls = (pid) => {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const num = (name) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return { reads: num('syscr'), writes: num('syscw') };
};

async function run(target) {
  const port = await freePort();
  const prefix = `bench-post-ab-${port}-${Date.now()}:`;
  const baseline = target === 'baseline' || target === 'baseline-durable';
  const script = baseline ? join(ROOT, 'bench/baseline-server.mjs') : join(target, 'main.js');
  const env = { ...process.env, BASELINE_DURABLE: target === 'baseline-durable' ? '1' : '0', PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', REDIS_URL: redisUrl, REDIS_PREFIX: prefix, API_KEYS: apiKey, DEVICE_JWT_SECRET: secret, LOG_LEVEL: values['log-level'], API_RATE_LIMIT: '100000', HEARTBEAT_INTERVAL_MS: '120000', HEARTBEAT_MAX_MS: '300000' };
  const probeFile = PROFILE_DIR ? join(PROFILE_DIR, `.probe-${port}.json`) : undefined;
  if (probeFile) env.BENCH_PROBE_FILE = probeFile;
  const nodeArgs = [...(process.env.POST_AB_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...(probeFile ? ['--require', PROBE] : [])];
  const child = spawn(process.execPath, [...nodeArgs, script], { env, stdio: ['ignore', process.env.POST_AB_CHILD_OUT ? 'inherit' : 'ignore', 'ignore'] });
  const probe = (command) => probeCommand(child, probeFile, target, command, 30_000);
  const runNo = ++runs;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
  let socket;
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${target} did not start`);
      if (await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const token = jwt.sign({ sub: 'ab-user', deviceId: 'ab-dev', exp: Math.floor(Date.now() / 1000) + 3600 }, createSecretKey(Buffer.from(secret)), { algorithm: 'HS256' });
    socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], auth: { token }, reconnection: false });
    let received = 0;
    socket.on('notification', (_payload, ack) => {
      received++;
      ack?.();
    });
    await new Promise((resolve, reject) => {
      socket.once('ready', resolve);
      socket.once('connect_error', reject);
    });
    const path = baseline ? '/push' : '/v1/notifications';
    const headers = baseline ? {} : { authorization: `Bearer ${apiKey}` };
    const body = JSON.stringify({ deviceIds: ['ab-dev'], data: { text: 'hello' } });
    const post = () =>
      new Promise((resolve, reject) => {
        const req = http.request({ agent, port, host: '127.0.0.1', method: 'POST', path, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`${target}: status ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
    const burst = async (n) => {
      let next = 0;
      await Promise.all(Array.from({ length: CONC }, async () => {
        while (next++ < n) await post();
      }));
    };
    const warmup = Math.min(500, POSTS);
    await burst(warmup);
    if (probeFile) await probe('profile-start');
    const before = cpuMs(child.pid);
    const callsBefore = syscalls(child.pid);
    const started = performance.now();
    await burst(POSTS);
    while (received < warmup + POSTS && performance.now() - started < 60_000) await new Promise((r) => setTimeout(r, 20));
    const calls = syscalls(child.pid);
    const result = {
      cpuPerPost: (cpuMs(child.pid) - before) / POSTS,
      ms: performance.now() - started,
      readsPerPost: (calls.reads - callsBefore.reads) / POSTS,
      writesPerPost: (calls.writes - callsBefore.writes) / POSTS,
    };
    if (probeFile) await probe(`profile-stop ${join(PROFILE_DIR, `${runNo}-${basename(target)}.cpuprofile`)}`);
    return result;
  } finally {
    socket?.disconnect();
    agent.destroy();
    child.kill('SIGKILL');
    const redis = new Redis(redisUrl);
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 })) if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}

const results = new Map(positionals.map((t) => [t, []]));
for (let rep = 0; rep < REPS; rep++) {
  for (const target of rep % 2 ? [...positionals].reverse() : positionals) {
    const r = await run(target);
    results.get(target).push(r.cpuPerPost);
    process.stdout.write(
      `${target}: ${r.cpuPerPost.toFixed(3)} ms CPU per POST (${POSTS} in ${Math.round(r.ms)} ms), system calls per POST: ${r.readsPerPost.toFixed(2)} reads, ${r.writesPerPost.toFixed(2)} writes\n`,
    );
  }
}
for (const [target, v] of results) {
  v.sort((a, b) => a - b);
  process.stdout.write(`== ${target}: median ${v[Math.floor(v.length / 2)].toFixed(3)} ms, min ${v[0].toFixed(3)}, max ${v.at(-1).toFixed(3)}\n`);
}
