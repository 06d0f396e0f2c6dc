// Where a push p99 comes from: the bench's push case (bench/scenarios/push.mjs: the same server,
// started by startServer, and the same load generator) over a longer window, against a fresh
// gateway run with --trace-gc. Prints the receipts' p50/p99/max after the first `--skip` ms (a
// fresh process compiles for its first seconds), every 100 ms window of the run whose slowest
// receipt took over 10 ms, and the gateway's garbage collections over 5 ms with when they
// happened (on this process's clock, aligned with the generator's at the start of the run, to a
// millisecond or so): a p99 made by a few stalls shows as a few windows, a GC pause as a GC line
// at the same time. On the Redis at REDIS_URL (default 127.0.0.1:6379), under its own key prefix.
//   node bench/push-stalls.mjs [one|user] [--rate 1000] [--duration 25000] [--skip 10000] [--server gateway]
// --server durable|baseline: the same run against a baseline instead (no GC lines: only the
// gateway's are read), for its p50/p99 beside the gateway's in one sitting.
// BENCH_GATEWAY_DIST: another build's directory (default dist/: npm run build first);
// BENCH_GATEWAY_NODE_ARGS: more flags for the gateway's node (bench/lib/harness.mjs).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { Loadgen, secrets, startServer } from './lib/harness.mjs';
import { readStats } from './lib/redis.mjs';
import { installExitHandlers, killAll } from './lib/procs.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rate: { type: 'string', default: '1000' }, duration: { type: 'string', default: '25000' }, skip: { type: 'string', default: '10000' }, server: { type: 'string', default: 'gateway' } },
});
const mode = positionals[0] ?? 'user';
const kind = values.server;
if ((mode !== 'one' && mode !== 'user') || !['gateway', 'durable', 'baseline'].includes(kind)) {
  process.stderr.write('usage: node bench/push-stalls.mjs [one|user] [--rate 1000] [--duration 25000] [--skip 10000] [--server gateway|durable|baseline]\n');
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
  const server = await startServer(kind, { redisUrl, probeDir, nodeArgs: kind === 'gateway' ? ['--trace-gc'] : [], extraEnv: { REDIS_PREFIX: prefix } });
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
  // Redis's side of the run (it serves this server only): CPU and commands, per POST.
  const stats = new Redis(redisUrl);
  const before = await readStats(stats);
  // Time each process's main thread spent runnable but waiting for a CPU (the kernel's schedstat).
  const watched = { server: server.pid, redis: before.pid, generator: lg.pid };
  const waitsBefore = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, schedstat(pid)]));
  const pressureBefore = cpuPressureUs();
  const serverCpuBefore = server.cpuMs();
  const start = performance.now();
  const r = await lg.call('push', { url: server.url, path: server.push.path, headers: server.push.headers, target, rate, expectedOnline: devices, durationMs }, durationMs + 30_000);

  const serverCpuMs = server.cpuMs() - serverCpuBefore;
  const runMs = performance.now() - start;
  const waits = Object.entries(watched).map(([k, pid]) => {
    const [a, b] = [waitsBefore[k], schedstat(pid)];
    const slices = b.slices - a.slices;
    return `${k} ${((b.waitNs - a.waitNs) / 1e6).toFixed(0)} ms in ${slices} wakeups (${((b.waitNs - a.waitNs) / 1e3 / Math.max(1, slices)).toFixed(0)} µs each; on a CPU ${((b.runNs - a.runNs) / 1e6).toFixed(0)} ms)`;
  });
  console.log(`  main threads waiting for a CPU over the run: ${waits.join('; ')}`);
  const pressure = cpuPressureUs();
  if (pressure !== undefined && pressureBefore !== undefined) console.log(`  CPU pressure (some task waiting): ${((pressure - pressureBefore) / 1e3 / runMs * 100).toFixed(1)} % of the run`);
  const after = await readStats(stats);
  await stats.quit();
  const perPost = Object.entries(after.commands)
    .map(([cmd, n]) => [cmd, (n - (before.commands[cmd] ?? 0)) / r.issued])
    .filter(([, n]) => n >= 0.01)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  server: ${((serverCpuMs / r.issued) * 1000).toFixed(1)} µs CPU per POST (all of the run's)`);
  console.log(`  Redis: ${((after.cpuMs - before.cpuMs) / r.issued * 1000).toFixed(1)} µs CPU per POST; commands per POST (incl. in scripts, all of the run's): ${perPost.map(([c, n]) => `${c} ${n.toFixed(2)}`).join(', ')}`);
  // Execution time per command (a script's EVALSHA includes the commands it ran, also counted under their names).
  const usecPerPost = Object.entries(after.usec)
    .map(([cmd, us]) => [cmd, (us - (before.usec[cmd] ?? 0)) / r.issued])
    .filter(([, us]) => us >= 0.5)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  Redis execution µs per POST: ${usecPerPost.map(([c, us]) => `${c} ${us.toFixed(1)}`).join(', ')}`);
  // The generator's clock: its first POST went out as the run started here.
  const first = r.sentAts.reduce((m, t) => Math.min(m, t), Infinity);
  const receipts = Array.from(r.latencies, (ms, i) => [r.sentAts[i] - first, ms]);
  const measured = receipts.filter(([at]) => at >= skipMs).map(([, ms]) => ms).sort((a, b) => a - b);
  const q = (p) => measured[Math.min(measured.length - 1, Math.floor(measured.length * p))]?.toFixed(2);
  console.log(`${kind}: ${mode === 'user' ? 'a user with 3 devices' : 'one device'} at ${rate}/s, ${r.issued} POSTs in ${durationMs} ms, ${r.receipts}/${r.expectedReceipts} received`);
  console.log(`  after the first ${skipMs} ms: ${measured.length} receipts, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${measured.at(-1)?.toFixed(1)} ms`);
  // Where the tail lies: how many measured receipts took each range of milliseconds.
  const edges = [1, 2, 4, 6, 8, 10, 20, Infinity];
  const counts = edges.map((edge, i) => measured.filter((ms) => ms >= (edges[i - 1] ?? 0) && ms < edge).length);
  console.log(`  receipts by latency: ${edges.map((edge, i) => `${edges[i - 1] ?? 0}-${edge === Infinity ? '' : edge} ms ${counts[i]}`).join(', ')}`);
  const slow = new Map();
  for (const [at, ms] of receipts) {
    if (ms <= 10) continue;
    const w = Math.floor(at / 100) * 100;
    slow.set(w, Math.max(slow.get(w) ?? 0, ms));
  }
  console.log(`  100 ms windows (ms into the run) whose slowest receipt took over 10 ms: ${[...slow].map(([w, ms]) => `${w}:${ms.toFixed(0)}`).join(' ') || 'none'}`);
  const collections = gcLines
    .filter(([t]) => t >= start)
    .map(([t, line]) => ({ t: t - start, line, ms: Number(/ MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line)?.[1] ?? 0) }));
  // Every scavenge of the measured part: how often the young generation fills, and what each costs.
  const scavenges = collections.filter((g) => g.t >= skipMs && /Scavenge/.test(g.line)).map((g) => g.ms).sort((a, b) => a - b);
  if (kind === 'gateway') {
    const total = scavenges.reduce((a, b) => a + b, 0);
    console.log(`  scavenges after the first ${skipMs} ms: ${scavenges.length}, ${total.toFixed(0)} ms in all, median ${scavenges[scavenges.length >> 1]?.toFixed(2)} ms, max ${scavenges.at(-1)?.toFixed(2)} ms`);
  }
  const pauses = collections.filter((g) => g.ms > 5);
  console.log(`  GC pauses over 5 ms: ${pauses.length ? '' : 'none'}`);
  for (const g of pauses) console.log(`    at ${g.t.toFixed(0)} ms: ${g.line.trim().replace(/^\[[^\]]*\]\s*/, '').slice(0, 140)}`);
} finally {
  await killAll();
  rmSync(probeDir, { recursive: true, force: true });
  const redis = new Redis(redisUrl);
  for await (const found of redis.scanStream({ match: `${prefix}*`, count: 1000 })) if (found.length) await redis.del(...found);
  await redis.quit();
}

/** A process's main thread's time on a CPU and waiting to run (ns), and its timeslices, from /proc. */
function schedstat(pid) {
  try {
    const [runNs, waitNs, slices] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { runNs, waitNs, slices };
  } catch {
    return { runNs: NaN, waitNs: NaN, slices: NaN };
  }
}

/** Total µs some task waited for a CPU (PSI), where the kernel has it. */
function cpuPressureUs() {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}
