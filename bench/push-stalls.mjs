// Where a push p99 comes from: the bench's push case (bench/scenarios/push.mjs: the same server,
// started by startServer, and the same load generator) over a longer window, against a fresh
// gateway run with --trace-gc. Prints the receipts' p50/p99/max after the first `--skip` ms (a
// fresh process compiles for its first seconds), every 100 ms window of the run whose slowest
// receipt took over 10 ms, and the gateway's garbage collections over 5 ms with when they
// happened (on this process's clock, aligned with the generator's at the start of the run, to a
// millisecond or so): a p99 made by a few stalls shows as a few windows, a GC pause as a GC line
// at the same time. On the Redis at REDIS_URL (default 127.0.0.1:6379), under its own key prefix.
//   node bench/push-stalls.mjs [one|user] [--rate 1000] [--duration 25000] [--skip 10000]
// BENCH_GATEWAY_DIST: another build's directory (default dist/: npm run build first);
// BENCH_GATEWAY_NODE_ARGS: more flags for the gateway's node (bench/lib/harness.mjs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { Loadgen, secrets, startServer } from './lib/harness.mjs';
import { installExitHandlers, killAll } from './lib/procs.mjs';

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
const devices = mode === 'user' ? 3 : 1;

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bench-stalls-${process.pid}:`;
const probeDir = mkdtempSync(join(tmpdir(), 'push-stalls-'));
installExitHandlers();
try {
  const server = await startServer('gateway', { redisUrl, probeDir, nodeArgs: ['--trace-gc'], extraEnv: { REDIS_PREFIX: prefix } });
  /** --trace-gc lines, with when they were read on this process's clock. */
  const gcLines = [];
  let partial = '';
  server.child.stdout.on('data', (d) => {
    partial += d;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      gcLines.push([performance.now(), partial.slice(0, i)]);
      partial = partial.slice(i + 1);
    }
  });
  const lg = await Loadgen.start(0);
  const connected = await lg.call('connect', { url: server.url, kind: server.kind, secret: secrets.jwtSecret, idPrefix: 'stalls-dev-', count: devices, userId: 'stalls-user' });
  if (connected.ok !== devices) throw new Error(`devices did not connect: ${JSON.stringify(connected)}`);
  const target = mode === 'user' ? { userIds: ['stalls-user'] } : { deviceIds: ['stalls-dev-0'] };
  const start = performance.now();
  const r = await lg.call('push', { url: server.url, path: server.push.path, headers: server.push.headers, target, rate, expectedOnline: devices, durationMs }, durationMs + 30_000);

  // The generator's clock: its first POST went out as the run started here.
  const first = r.sentAts.reduce((m, t) => Math.min(m, t), Infinity);
  const receipts = Array.from(r.latencies, (ms, i) => [r.sentAts[i] - first, ms]);
  const measured = receipts.filter(([at]) => at >= skipMs).map(([, ms]) => ms).sort((a, b) => a - b);
  const q = (p) => measured[Math.min(measured.length - 1, Math.floor(measured.length * p))]?.toFixed(2);
  console.log(`${mode === 'user' ? 'a user with 3 devices' : 'one device'} at ${rate}/s, ${r.issued} POSTs in ${durationMs} ms, ${r.receipts}/${r.expectedReceipts} received`);
  console.log(`  after the first ${skipMs} ms: ${measured.length} receipts, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${measured.at(-1)?.toFixed(1)} ms`);
  const slow = new Map();
  for (const [at, ms] of receipts) {
    if (ms <= 10) continue;
    const w = Math.floor(at / 100) * 100;
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
  await killAll();
  rmSync(probeDir, { recursive: true, force: true });
  const redis = new Redis(redisUrl);
  for await (const found of redis.scanStream({ match: `${prefix}*`, count: 1000 })) if (found.length) await redis.del(...found);
  await redis.quit();
}
