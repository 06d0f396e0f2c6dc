// npm run bench [-- --quick] [--only=connections,push] [--set heartbeats.rates=1000,5000] [--cpu-prof] [--alloc-prof] [--heap-snapshots]
//   (BENCH_GATEWAY_DIST=<dir> runs another build of the gateway, e.g. main's, against the same baseline)
//                [--report <results.json>]
//
// Benchmarks the built gateway (dist/main.js) against a bare Socket.IO + ioredis baseline
// (bench/baseline-server.mjs) in the same run: every scenario runs against both servers, the order
// alternating from one scenario to the next. It starts its own redis-server on a free loopback
// port (a new one on that port before each server's run, so no server inherits the last one's
// Redis), the servers and forked load-generator processes, stops every one of them at the end (also on
// error and Ctrl-C), prints a table and writes bench/results/<date>[-quick].json and .md; a full run
// also writes the charts to docs/ and refreshes the results block of docs/performance.md.
//
// Exit status: 0 when every scenario ran (whatever the numbers), 1 when something failed to run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { disconnectAll, Loadgen, ROOT, secrets, startServer } from './lib/harness.mjs';
import { installExitHandlers, killAll } from './lib/procs.mjs';
import { redisVersion, startRedis } from './lib/redis.mjs';
import { charts, consoleTable, evaluateTargets, reportMarkdown, resultsMarkdown, machineLines } from './lib/report.mjs';
import * as connections from './scenarios/connections.mjs';
import * as crash from './scenarios/crash.mjs';
import * as fanout from './scenarios/fanout.mjs';
import * as flood from './scenarios/flood.mjs';
import * as heartbeats from './scenarios/heartbeats.mjs';
import * as instances from './scenarios/instances.mjs';
import * as overload from './scenarios/overload.mjs';
import * as push from './scenarios/push.mjs';
import * as sweep from './scenarios/sweep.mjs';
import * as webhooks from './scenarios/webhooks.mjs';

/**
 * Full run: under 15 minutes on 2 cores. Client sockets are spread over the generators: one holds
 * at most about 6,000 (connections' max probe: 20k on one server, 10k still held on the other).
 */
const FULL = {
  loadgens: 5,
  connections: { levels: [1_000, 5_000, 10_000], chunk: 1_000, maxProbe: 20_400, settleMs: 3_000, concurrency: 40 },
  heartbeats: { devices: 10_000, rates: [1_000, 2_500, 5_000, 10_000], warmupMs: 3_000, durationMs: 10_000, drainMs: 15_000, monitorRate: 1_000, monitorMs: 2_000, concurrency: 40, durable: 1 },
  // extraRates: the cost curve (one device); overloadRate: past saturation, from overloadSockets connections.
  // laps: each case in that many windows per server, the servers taking turns; durations are each server's total.
  push: { rate: 1_000, primeMs: 8_000, laps: 3, extraRates: [250, 500, 2_000], extraDurationMs: 6_000, warmupMs: 1_000, durationMs: 15_000, overloadRate: 4_000, overloadSockets: 2_000, overloadDurationMs: 8_000 },
  // audiences: the fan-out cost curve (devices join in steps); the headline is at `devices`, the
  // median of `rounds` (odd: one middle round; 9 rather than 5 narrows its spread on shared cores).
  fanout: { devices: 10_000, audiences: [1_000, 5_000, 10_000, 19_000], curveRounds: 2, warmupRounds: 1, rounds: 9, pauseMs: 1_000, concurrency: 40, durable: 0 },
  sweep: { healthy: [1_000, 10_000, 50_000], expired: 1_000, reps: 7 },
  instances: { devices: 10_000, rates: [1_000, 5_000], warmupMs: 2_000, durationMs: 8_000, drainMs: 10_000, concurrency: 40 },
  overload: { devices: 10_000, rampFrom: 1_000, rampMax: 60_000, rampMs: 3_000, warmupMs: 1_000, durationMs: 20_000, drainMs: 2_000, concurrency: 40 },
  flood: { devices: 1_000, rate: 500, warmupMs: 2_000, controlMs: 5_000, floodMs: 10_000, healthEveryMs: 250, concurrency: 40 },
  // interval 20 s: a 53 s ttl, long enough to connect every device before the kill.
  crash: { devices: 10_000, intervalMs: 20_000, graceMs: 5_000, beatMs: 3_000, concurrency: 40 },
  webhooks: { backlog: 20_000, drainTimeoutMs: 120_000, latencyRate: 200, tickMs: 50, latencyMs: 10_000 },
};

/** Quick run (CI smoke): every scenario for both servers with small counts and short phases; about 3 minutes on 2 quiet cores. */
const QUICK = {
  loadgens: 2,
  connections: { levels: [200, 500, 1_000], chunk: 100, maxProbe: 0, settleMs: 500, concurrency: 25 },
  heartbeats: { devices: 1_000, rates: [500, 1_000], warmupMs: 500, durationMs: 1_200, drainMs: 1_000, monitorRate: 500, monitorMs: 1_000, concurrency: 25, durable: 1 },
  push: { rate: 1_000, extraRates: [250, 2_000], extraDurationMs: 1_000, warmupMs: 500, durationMs: 1_000, overloadRate: 3_000, overloadSockets: 500, overloadDurationMs: 1_500 },
  fanout: { devices: 1_000, audiences: [500, 1_000], curveRounds: 2, warmupRounds: 1, rounds: 2, pauseMs: 200, concurrency: 25, durable: 0 },
  sweep: { healthy: [1_000, 10_000, 20_000], expired: 1_000, reps: 3 },
  instances: { devices: 1_000, rates: [500], warmupMs: 500, durationMs: 1_200, drainMs: 1_000, concurrency: 25 },
  overload: { devices: 1_000, rampFrom: 3_000, rampMax: 20_000, rampMs: 1_000, warmupMs: 300, durationMs: 2_000, drainMs: 1_000, concurrency: 25 },
  flood: { devices: 200, rate: 200, warmupMs: 300, controlMs: 1_000, floodMs: 5_500, healthEveryMs: 250, concurrency: 25 },
  // interval 6 s: an 18 s ttl, past the 15 s a killed process's own record lives (3 reports of 5 s),
  // so its sessions run out once it is known gone (instance_lost), as in the full run.
  crash: { devices: 1_000, intervalMs: 6_000, graceMs: 5_000, beatMs: 1_000, concurrency: 25 },
  webhooks: { backlog: 5_000, drainTimeoutMs: 60_000, latencyRate: 200, tickMs: 50, latencyMs: 2_000 },
};

const SCENARIOS = [connections, heartbeats, push, fanout, sweep, instances, overload, flood, crash, webhooks];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'alloc-prof': { type: 'boolean', default: false },
    'heap-snapshots': { type: 'boolean', default: false },
    report: { type: 'string' },
    write: { type: 'boolean', default: false },
    set: { type: 'string', multiple: true },
    help: { type: 'boolean', default: false },
  },
});

const log = (msg) => process.stdout.write(`${msg}\n`);

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function sh(cmd, argv) {
  try {
    return execFileSync(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

function machine() {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    nproc: Number(sh('nproc', [])),
    memTotalGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    fdLimit: Number(/Max open files\s+(\d+)/.exec(limits)?.[1]),
    node: process.version,
    redis: redisVersion(),
    os: `${os.type()} ${os.release()}`,
  };
}

async function runScenarios(meta, params) {
  const only = args.only?.split(',').map((s) => s.trim());
  const scenarios = {};
  const errors = [];
  const probeDir = mkdtempSync(join(os.tmpdir(), 'push-gateway-bench-'));
  const profileDir = join(ROOT, 'bench/results/profiles');
  if (args['cpu-prof'] || args['alloc-prof'] || args['heap-snapshots']) mkdirSync(profileDir, { recursive: true });

  log(`starting redis-server and ${params.loadgens} load generators`);
  const redis = await startRedis();
  const loadgens = await Promise.all(Array.from({ length: params.loadgens }, (_, i) => Loadgen.start(i)));
  const h = {
    mode: meta.mode,
    date: meta.date,
    redis,
    loadgens,
    secrets,
    log,
    profileDir,
    cpuProfiles: args['cpu-prof'],
    allocProfiles: args['alloc-prof'],
    heapSnapshots: args['heap-snapshots'],
    scenario: '',
  };
  try {
    let index = 0;
    for (const sc of SCENARIOS) {
      if (only && !only.includes(sc.name)) continue;
      const applicable = sc.applicable?.();
      if (applicable && !applicable.applicable) {
        scenarios[sc.name] = applicable;
        log(`\n== ${sc.name}: ${applicable.reason}`);
        continue;
      }
      // A scenario may run more servers than the two (push: the durable baseline as well).
      const kinds = sc.gatewayOnly ? ['gateway'] : ((typeof sc.kinds === 'function' ? sc.kinds(params[sc.name]) : sc.kinds) ?? ['gateway', 'baseline']);
      const order = sc.gatewayOnly || index++ % 2 === 0 ? kinds : [...kinds].reverse();
      const entry = { order };
      if (sc.gatewayOnly) entry.baseline = { notApplicable: sc.gatewayOnly };
      scenarios[sc.name] = entry;
      h.scenario = sc.name;
      // A scenario with runPaired gets its servers all at once, side by side (fan-out: see its
      // header); the others one kind at a time.
      for (const group of sc.runPaired ? [order] : order.map((kind) => [kind])) {
        const [kind] = group;
        log(`\n== ${sc.name}: ${group.join(' and ')}${group.length > 1 ? ', side by side' : ''}`);
        const started = performance.now();
        const servers = [];
        try {
          if (sc.name === 'sweep') {
            entry[kind] = await sc.run(h, kind, params.sweep);
          } else if (sc.gatewayOnly) {
            // The scenario starts (and stops) its own gateway processes.
            await redis.restart();
            const start = (extraEnv) => startServer(kind, { redisUrl: redis.url, probeDir, extraEnv });
            entry[kind] = await sc.run(h, start, params[sc.name]);
          } else {
            await redis.restart();
            for (const k of group) servers.push(await startServer(k, { redisUrl: redis.url, probeDir, extraEnv: sc.serverEnv?.[k] }));
            if (sc.runPaired) Object.assign(entry, await sc.runPaired(h, servers, params[sc.name]));
            else entry[kind] = await sc.run(h, servers[0], params[sc.name]);
          }
        } catch (err) {
          errors.push(`${sc.name} / ${group.join(', ')}: ${err.message}`);
          for (const k of group) entry[k] = { error: err.message };
          log(`  FAILED: ${err.stack}`);
          await disconnectAll(h).catch(() => {});
        } finally {
          await Promise.all(servers.map((server) => server.stop()));
        }
        const seconds = Math.round((performance.now() - started) / 100) / 10;
        for (const k of group) if (entry[k]) entry[k].seconds = seconds;
      }
    }
  } finally {
    await Promise.all(loadgens.map((lg) => lg.call('exit', {}, 5_000).catch(() => {})));
    await redis.stop();
    await killAll();
    rmSync(probeDir, { recursive: true, force: true });
  }
  return { scenarios, errors };
}

function writeOutputs(results, fromFile) {
  const { meta } = results;
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  // Partial (--only) and quick runs get names of their own (not committed); a full run is <date>.*.
  const suffix = `${meta.mode === 'quick' ? '-quick' : ''}${args.only ? `-only-${args.only.replace(/[^a-z,]/g, '').replace(/,/g, '-')}` : ''}${args.set ? '-only-custom' : ''}`;
  const base = fromFile ? resolve(fromFile).replace(/\.json$/, '') : join(dir, `${meta.date}${suffix}`);
  if (!fromFile) writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(`${base}.md`, reportMarkdown(results));
  const svgs = charts(results);
  // Only a full run updates docs/; a quick run keeps its charts next to its results.
  // docs/ shows a full run: the one just made, or a <date>.json given to --report --write.
  const official = meta.mode === 'full' && !meta.partial && (fromFile ? /^\d{4}-\d{2}-\d{2}\.json$/.test(basename(fromFile)) : !args.only && !args.set);
  const chartBase = official ? join(ROOT, 'docs/performance') : base;
  const chartFiles = Object.entries(svgs).map(([name, svg]) => {
    const file = `${chartBase}-${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}.svg`;
    writeFileSync(file, svg);
    return file;
  });
  const written = [...(fromFile ? [] : [`${base}.json`]), `${base}.md`, ...chartFiles];
  if (official) written.push(...updateDocs(results));
  return written.map((f) => f.replace(`${ROOT}/`, ''));
}

/** Refreshes the generated block of docs/performance.md (between the bench:results markers). */
function updateDocs(results) {
  const file = join(ROOT, 'docs/performance.md');
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  const block = [
    start,
    `Latest full run: ${results.meta.date}, commit ${results.meta.commit}, ${Math.round(results.meta.durationSeconds)} s ` +
      `(raw figures: \`bench/results/${results.meta.date}.json\`).`,
    '',
    ...machineLines(results.meta),
    '',
    resultsMarkdown(results),
    end,
  ].join('\n');
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return [];
  writeFileSync(file, text.slice(0, i) + block + text.slice(j + end.length));
  return [file];
}

/** --set heartbeats.rates=1000,5000 or --set push.durationMs=5000: overrides one parameter. */
function applySetting(params, setting) {
  const [path, value] = setting.split('=');
  const keys = path.split('.');
  const last = keys.pop();
  const target = keys.reduce((o, k) => o?.[k], params);
  if (!target || !(last in target) || value === undefined) throw new Error(`--set ${setting}: unknown parameter`);
  target[last] = Array.isArray(target[last]) ? value.split(',').map(Number) : Number(value);
}

async function main() {
  if (args.help) {
    log('usage: npm run bench [-- --quick] [--only=connections,heartbeats,push,fanout,sweep,instances,overload,flood,crash,webhooks] [--set heartbeats.rates=1000,5000] [--cpu-prof] [--alloc-prof] [--heap-snapshots] [--report results.json [--write]]');
    return 0;
  }
  if (args.report) {
    // Rebuilds the table (and with --write the Markdown report, the charts and, for a full run, the
    // docs block) from a results file, e.g. to publish an earlier run than the latest.
    const results = JSON.parse(readFileSync(args.report, 'utf8'));
    results.targets = evaluateTargets(results);
    log(consoleTable(results));
    if (args.write) log(`wrote ${writeOutputs(results, args.report).join(', ')}`);
    return 0;
  }
  if (!existsSync(join(ROOT, 'dist/main.js'))) {
    log('dist/main.js is missing: run `npm run build` first (`npm run bench` does).');
    return 1;
  }
  const mode = args.quick ? 'quick' : 'full';
  const params = structuredClone(args.quick ? QUICK : FULL);
  for (const setting of args.set ?? []) applySetting(params, setting);
  const t0 = performance.now();
  const meta = {
    date: today(),
    startedAt: new Date().toISOString(),
    mode,
    commit: sh('git', ['rev-parse', '--short', 'HEAD']),
    socketIo: JSON.parse(readFileSync(join(ROOT, 'node_modules/socket.io/package.json'), 'utf8')).version,
    machine: machine(),
    params,
    partial: Boolean(args.only || args.set),
  };
  log(`push-gateway bench (${mode}) on ${meta.machine.cpus} x ${meta.machine.cpuModel}, Node ${meta.machine.node}, Redis ${meta.machine.redis}`);
  const { scenarios, errors } = await runScenarios(meta, params);
  meta.durationSeconds = Math.round((performance.now() - t0) / 1000);
  const results = { meta, scenarios, errors };
  results.targets = evaluateTargets(results);
  const written = writeOutputs(results);
  log(`\n${consoleTable(results)}\n`);
  log(`wrote ${written.join(', ')} (${meta.durationSeconds} s)`);
  if (errors.length) {
    log(`\n${errors.length} scenario run(s) failed:\n${errors.map((e) => `  ${e}`).join('\n')}`);
    return 1;
  }
  return 0;
}

installExitHandlers();
const HARD_LIMIT_MS = (args.quick ? 5 : 25) * 60_000;
const hardLimit = setTimeout(() => {
  process.stderr.write(`bench: hard time limit (${HARD_LIMIT_MS / 60_000} min) reached, stopping\n`);
  void killAll(1_000).finally(() => process.exit(1));
}, HARD_LIMIT_MS);
hardLimit.unref();

main().then(
  (code) => {
    process.exitCode = code;
    void killAll().then(() => process.exit(code));
  },
  (err) => {
    process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
    void killAll().then(() => process.exit(1));
  },
);
