// Where a push p99 comes from: POSTs at a fixed rate to one device or to a user with 3 devices (as
// the bench's push scenario), against a fresh gateway run with --trace-gc, over a longer window.
// Prints the receipts' p50/p99/max after the first `--skip` ms (a fresh process compiles for its
// first seconds), every 100 ms window of the run whose slowest receipt took over 10 ms, and the
// gateway's garbage collections over 5 ms with when they happened, on the same clock: a p99 made
// by a few stalls shows as a few windows, a GC pause as a GC line at the same time. The poster and
// the devices are this one process (one clock for both ends), on the Redis at REDIS_URL.
//   node bench/push-stalls.mjs [one|user] [--rate 1000] [--duration 25000] [--skip 10000]
// BENCH_GATEWAY_DIST: another build's directory (default dist/: npm run build first).
import { spawn } from 'node:child_process';
import { createSecretKey, randomBytes } from 'node:crypto';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import { ROOT } from './lib/harness.mjs';
import { freePort, sleep, waitHttpOk } from './lib/procs.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rate: { type: 'string', default: '1000' }, duration: { type: 'string', default: '25000' }, skip: { type: 'string', default: '10000' } },
});
const mode = positionals[0] ?? 'user';
if (mode !== 'one' && mode !== 'user') {
  process.stderr.write('usage: node bench/push-stalls.mjs [one|user] [--rate 1000] [--duration 25000] [--skip 10000]\n');
  process.exit(2);
}
const rate = Number(values.rate);
const durationMs = Number(values.duration);
const skipMs = Number(values.skip);
const apiKey = `stalls-${randomBytes(12).toString('hex')}`;
const secret = randomBytes(32).toString('hex');
const port = await freePort();
const dist = process.env.BENCH_GATEWAY_DIST ? resolve(ROOT, process.env.BENCH_GATEWAY_DIST) : join(ROOT, 'dist');

const gateway = spawn(process.execPath, ['--trace-gc', join(dist, 'main.js')], {
  env: {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench-stalls-${port}:`,
    DEVICE_JWT_SECRET: secret,
    API_KEYS: apiKey,
    LOG_LEVEL: 'warn',
    API_RATE_LIMIT: '100000',
    ACK_TIMEOUT_MS: '10000',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
gateway.benchName = 'gateway';
let output = '';
gateway.output = () => output;
gateway.stderr.on('data', (d) => (output += d));
/** --trace-gc lines, with when they were read on this process's clock. */
const gcLines = [];
let partial = '';
gateway.stdout.on('data', (d) => {
  partial += d;
  let i;
  while ((i = partial.indexOf('\n')) >= 0) {
    gcLines.push([performance.now(), partial.slice(0, i)]);
    partial = partial.slice(i + 1);
  }
});

try {
  await waitHttpOk(`http://127.0.0.1:${port}/health/ready`, gateway, 30_000);
  const key = createSecretKey(Buffer.from(secret));
  /** [sent at, latency] per receipt, on performance.now(). */
  const receipts = [];
  const sockets = [];
  for (let i = 0; i < (mode === 'user' ? 3 : 1); i++) {
    const token = jwt.sign({ sub: 'stalls-user', deviceId: `stalls-dev-${i}`, exp: Math.floor(Date.now() / 1000) + 3600 }, key, { algorithm: 'HS256' });
    const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token } });
    socket.on('notification', (n, ack) => {
      receipts.push([n.data.s, performance.now() - n.data.s]);
      if (typeof ack === 'function') ack();
    });
    await new Promise((ok, fail) => {
      socket.once('connect', ok);
      socket.once('connect_error', fail);
    });
    sockets.push(socket);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = mode === 'user' ? { userIds: ['stalls-user'] } : { deviceIds: ['stalls-dev-0'] };
  const post = () => {
    const body = JSON.stringify({ ...target, data: { s: performance.now() } });
    const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ agent, hostname: '127.0.0.1', port, path: '/v1/notifications', method: 'POST', headers }, (res) => res.resume());
    req.on('error', () => undefined);
    req.end(body);
  };
  const start = performance.now();
  let issued = 0;
  while (performance.now() - start < durationMs) {
    const due = Math.floor(((performance.now() - start) * rate) / 1000) - issued;
    for (let i = 0; i < due; i++) post();
    issued += due;
    await new Promise((r) => setImmediate(r));
  }
  await sleep(1_000);
  sockets.forEach((s) => s.disconnect());
  agent.destroy();

  const measured = receipts.filter(([sentAt]) => sentAt - start >= skipMs).map(([, ms]) => ms).sort((a, b) => a - b);
  const at = (q) => measured[Math.min(measured.length - 1, Math.floor(measured.length * q))]?.toFixed(2);
  const expected = Math.round(((durationMs - skipMs) * rate) / 1000) * (mode === 'user' ? 3 : 1);
  console.log(`${mode === 'user' ? 'a user with 3 devices' : 'one device'} at ${rate}/s, ${issued} POSTs in ${durationMs} ms`);
  console.log(`  after the first ${skipMs} ms: ${measured.length} receipts (about ${expected} expected), p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${measured.at(-1)?.toFixed(1)} ms`);
  const slow = new Map();
  for (const [sentAt, ms] of receipts) {
    if (ms <= 10) continue;
    const w = Math.floor((sentAt - start) / 100) * 100;
    slow.set(w, Math.max(slow.get(w) ?? 0, ms));
  }
  console.log(`  100 ms windows (ms into the run) whose slowest receipt took over 10 ms: ${[...slow].map(([w, ms]) => `${w}:${ms.toFixed(0)}`).join(' ') || 'none'}`);
  const pauses = gcLines
    .filter(([t]) => t >= start)
    .map(([t, line]) => ({ t: t - start, line, ms: Number(/ MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line)?.[1] ?? 0) }))
    .filter((g) => g.ms > 5);
  console.log(`  GC pauses over 5 ms: ${pauses.length ? '' : 'none'}`);
  for (const g of pauses) console.log(`    at ${g.t.toFixed(0)} ms: ${g.line.trim().replace(/^\[[^\]]*\]\s*/, '').slice(0, 140)}`);
} finally {
  gateway.kill('SIGTERM');
  await new Promise((r) => (gateway.exitCode !== null ? r() : gateway.once('exit', r)));
}
process.exit(0);
