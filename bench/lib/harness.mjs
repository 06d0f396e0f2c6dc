// What every scenario uses: the servers under test (started the same way, with the same probe), the
// load-generator processes and a few measurement snapshots.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  cpuMs, fdLimit, forkTracked, freePort, machineTicks, openFds, rssKb, sleep, spawnTracked, stopChild, waitHttpOk,
} from './procs.mjs';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
/** The preload that answers probe commands (probe.cjs); a server started with it gets BENCH_PROBE_FILE. */
export const PROBE = join(ROOT, 'bench/lib/probe.cjs');
const LOADGEN = join(ROOT, 'bench/loadgen.mjs');

export const SERVER_KINDS = ['gateway', 'baseline'];

/** Settings shared by both servers; heartbeats announce HEARTBEAT_INTERVAL so nothing expires mid-run. */
export const HEARTBEAT = { interval: 120_000, min: 1_000, max: 300_000 };
export const ACK_TIMEOUT_MS = 10_000;

export const secrets = {
  apiKey: `bench-${randomBytes(12).toString('hex')}`,
  jwtSecret: randomBytes(32).toString('hex'),
};

/** Epoch ms with sub-ms resolution, comparable with the load generators' clocks. */
export const epoch = () => performance.timeOrigin + performance.now();

/**
 * Sends one command to the probe preloaded in `child` (probe.cjs: the command in
 * `${probeFile}.cmd`, then SIGUSR2) and waits for its answer in `probeFile`.
 */
export async function probeCommand(child, probeFile, name, command, timeoutMs = 10_000) {
  const read = () => {
    try {
      return JSON.parse(readFileSync(probeFile, 'utf8'));
    } catch {
      return null;
    }
  };
  const before = read()?.seq ?? 0;
  writeFileSync(`${probeFile}.cmd`, command);
  child.kill('SIGUSR2');
  let answer = null;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline && !(answer?.seq > before); ) {
    await sleep(20);
    answer = read();
  }
  if (!(answer?.seq > before)) throw new Error(`${name}: the probe did not answer "${command}"`);
  if (answer.error) throw new Error(`${name}: probe "${command}": ${answer.error}`);
  return answer;
}

/**
 * Starts one server under test with `node --expose-gc --require probe.cjs`, on a free loopback port,
 * against the bench's Redis, and waits for GET /health/ready.
 */
export async function startServer(kind, { redisUrl, probeDir, nodeArgs = [], extraEnv = {} }) {
  const port = await freePort();
  const probeFile = join(probeDir, `${kind}-${port}.json`);
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: redisUrl,
    REDIS_PREFIX: `bench-${kind}:`,
    HEARTBEAT_INTERVAL_MS: String(HEARTBEAT.interval),
    HEARTBEAT_MIN_MS: String(HEARTBEAT.min),
    HEARTBEAT_MAX_MS: String(HEARTBEAT.max),
    ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    BENCH_PROBE_FILE: probeFile,
    // Both servers verify the device JWT at the handshake.
    DEVICE_JWT_SECRET: secrets.jwtSecret,
    ...(kind === 'gateway'
      ? {
          API_KEYS: secrets.apiKey,
          LOG_LEVEL: 'warn',
          API_RATE_LIMIT: '100000',
          SOCKET_EVENTS_PER_SECOND: '1000',
          SWEEP_INTERVAL_MS: '5000',
        }
      : {}),
    ...extraEnv,
  };
  // BENCH_GATEWAY_DIST: another build of the gateway (e.g. main's, for a before/after in one sitting).
  const gatewayDist = process.env.BENCH_GATEWAY_DIST ? resolve(ROOT, process.env.BENCH_GATEWAY_DIST) : join(ROOT, 'dist');
  const script = kind === 'gateway' ? join(gatewayDist, 'main.js') : join(ROOT, 'bench/baseline-server.mjs');
  // `durable`: the baseline doing the Redis writes of the gateway's contract (bench/baseline-server.mjs).
  if (kind === 'durable') env.BASELINE_DURABLE = '1';
  // BENCH_GATEWAY_NODE_ARGS: node flags for the gateway only (space-separated), for a before/after.
  const gatewayArgs = kind === 'gateway' ? (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean) : [];
  const child = spawnTracked(kind, process.execPath, ['--expose-gc', '--require', PROBE, ...gatewayArgs, ...nodeArgs, script], { env, cwd: ROOT });
  const url = `http://127.0.0.1:${port}`;
  await waitHttpOk(`${url}/health/ready`, child, 30_000);
  const pid = child.pid;
  return {
    kind,
    port,
    url,
    pid,
    child,
    push: kind === 'gateway'
      ? { path: '/v1/notifications', headers: { authorization: `Bearer ${secrets.apiKey}` } }
      : { path: '/push', headers: {} },
    alive: () => child.exitCode === null && child.signalCode === null,
    cpuMs: () => cpuMs(pid),
    rssKb: () => rssKb(pid),
    openFds: () => openFds(pid),
    fdLimit: () => fdLimit(pid),
    /** Sends one command to the probe preloaded in the server (see probe.cjs) and waits for its answer. */
    probe(command, timeoutMs = 10_000) {
      return probeCommand(child, probeFile, kind, command, timeoutMs);
    },
    /** Full GC in the server, then RSS and heap figures (KB). */
    async memory() {
      const usage = await this.probe('memory');
      await sleep(100);
      return { rssKb: rssKb(pid), heapUsedKb: usage.heapUsed / 1024, externalKb: usage.external / 1024 };
    },
    async stop() {
      await stopChild(child, 3_000);
    },
  };
}

/** One forked load-generator process, driven by request/response messages. */
export class Loadgen {
  static async start(index) {
    const child = forkTracked(`loadgen-${index}`, LOADGEN, [], { cwd: ROOT });
    const lg = new Loadgen(index, child);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`loadgen-${index} did not start:\n${child.output()}`)), 15_000);
      child.once('message', (m) => {
        clearTimeout(timer);
        if (m?.ready) resolve();
        else reject(new Error(`loadgen-${index}: unexpected first message`));
      });
    });
    return lg;
  }

  constructor(index, child) {
    this.index = index;
    this.child = child;
    this.pid = child.pid;
    this.nextId = 1;
    this.pending = new Map();
    child.on('message', (m) => {
      const p = this.pending.get(m?.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`loadgen-${index} ${p.cmd}: ${m.error}`));
    });
    void child.exited.then(({ code, signal }) => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`loadgen-${index} exited (${code ?? signal}) during ${p.cmd}:\n${child.output()}`));
      }
      this.pending.clear();
    });
  }

  call(cmd, args = {}, timeoutMs = 180_000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`loadgen-${this.index} ${cmd}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, cmd });
      this.child.send({ id, cmd, args });
    });
  }

  cpuMs() {
    return cpuMs(this.pid);
  }
}

/** Splits `total` into `parts` near-equal integers. */
export function split(total, parts) {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}

/**
 * Connects `total` devices to `server`, spread over the load generators (device ids
 * `${idPrefix}${n}`, continuing per generator from what each already holds for this prefix).
 */
export async function connectDevices(h, server, { total, idPrefix, userId, concurrency = 40, timeoutMs = 20_000, deadlineMs = 180_000, offsets }) {
  const shares = split(total, h.loadgens.length);
  const started = performance.now();
  const results = await Promise.all(
    h.loadgens.map((lg, i) => {
      if (!shares[i]) return { ok: 0, failed: 0, errors: {}, ms: 0 };
      const from = offsets ? offsets[i] : 0;
      if (offsets) offsets[i] += shares[i];
      return lg.call(
        'connect',
        { url: server.url, kind: server.kind, secret: secrets.jwtSecret, idPrefix: `${idPrefix}${i}-`, from, count: shares[i], userId, concurrency, timeoutMs, deadlineMs },
        deadlineMs + timeoutMs + 30_000,
      );
    }),
  );
  const errors = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    ok: results.reduce((n, r) => n + r.ok, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    errors,
    ms: performance.now() - started,
  };
}

export async function disconnectAll(h) {
  await Promise.all(h.loadgens.map((lg) => lg.call('disconnect')));
}

/** Closes the devices held on one server, keeping the others'. */
export async function disconnectFrom(h, server) {
  await Promise.all(h.loadgens.map((lg) => lg.call('disconnect', { url: server.url })));
}

/** Held and connected sockets over every load generator; `byUrl`: connected ones per server. */
export async function loadgenStatus(h) {
  const all = await Promise.all(h.loadgens.map((lg) => lg.call('status')));
  const dropped = {};
  const byUrl = {};
  for (const s of all) {
    for (const [k, v] of Object.entries(s.dropped)) dropped[k] = (dropped[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.byUrl)) byUrl[k] = (byUrl[k] ?? 0) + v;
  }
  return { held: all.reduce((n, s) => n + s.held, 0), connected: all.reduce((n, s) => n + s.connected, 0), dropped, byUrl };
}

/** CPU counters of everything involved, to take deltas over a measured window. */
export async function snapshot(h, server) {
  const redis = await h.redis.stats();
  return {
    at: performance.now(),
    serverCpuMs: server ? server.cpuMs() : 0,
    redisProcCpuMs: cpuMs(h.redis.pid),
    loadgenCpuMs: h.loadgens.reduce((n, lg) => n + lg.cpuMs(), 0),
    selfCpuMs: process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000,
    machine: machineTicks(),
    redis,
  };
}

/** Deltas between two snapshots; `others` is CPU used on this machine by processes outside the bench. */
export function delta(a, b) {
  const wallMs = b.at - a.at;
  const server = b.serverCpuMs - a.serverCpuMs;
  const redisCpu = b.redisProcCpuMs - a.redisProcCpuMs;
  const loadgens = b.loadgenCpuMs - a.loadgenCpuMs;
  const self = b.selfCpuMs - a.selfCpuMs;
  const machineBusy = b.machine.busyMs - a.machine.busyMs;
  const commands = {};
  for (const [k, v] of Object.entries(b.redis.commands)) {
    const d = v - (a.redis.commands[k] ?? 0);
    if (d) commands[k] = d;
  }
  const commandUsec = {};
  for (const [k, v] of Object.entries(b.redis.usec ?? {})) {
    const d = v - (a.redis.usec?.[k] ?? 0);
    if (d) commandUsec[k] = d;
  }
  // The bench's own INFO/CONFIG calls are not the server's work.
  const ownCalls = (commands.info ?? 0) + (commands.config ?? 0);
  return {
    wallMs,
    serverCpuMs: server,
    redisCpuMs: redisCpu,
    loadgenCpuMs: loadgens,
    othersCpuMs: Math.max(0, machineBusy - server - redisCpu - loadgens - self),
    redisCommands: b.redis.totalCommands - a.redis.totalCommands - ownCalls,
    commands,
    commandUsec,
    redisReads: b.redis.reads - a.redis.reads,
    redisWrites: b.redis.writes - a.redis.writes,
  };
}

/**
 * Runs fn; with --cpu-prof, the server's CPU profile covers exactly that window and is written to
 * bench/results/profiles/<date>-<scenario>-<kind>-<label>.cpuprofile; with --alloc-prof, its
 * sampled allocations to the same name with .heapprofile (bench/alloc-summary.mjs reads it).
 */
export async function profiled(h, server, label, fn) {
  const kinds = [
    h.cpuProfiles && { probe: 'profile', ext: 'cpuprofile', what: 'profile' },
    h.allocProfiles && { probe: 'alloc', ext: 'heapprofile', what: 'allocation profile' },
  ].filter(Boolean);
  if (kinds.length === 0) return fn();
  const base = join(h.profileDir, `${h.date}-${h.scenario}-${server.kind}-${label}`);
  for (const k of kinds) await server.probe(`${k.probe}-start`);
  try {
    return await fn();
  } finally {
    for (const k of kinds) {
      await server.probe(`${k.probe}-stop ${base}.${k.ext}`, 30_000);
      h.log(`  ${k.what}: ${base.replace(`${ROOT}/`, '')}.${k.ext}`);
    }
  }
}
