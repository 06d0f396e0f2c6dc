// npm run simulate -- --devices 1000000 [--cluster | --cluster-nodes h:p,... | --redis redis://...] [--seconds 60] ...
//
// The capacity model, measured (issue 14 item 5): drives the gateway's real Redis stores (built
// dist/, created as the app creates them, over the app's own Redis connection factory) at a
// realistic mix for N devices, without sockets, and reports what Redis pays per device, per
// heartbeat and per publish, how long a sweep takes among N online, and the heartbeat script's
// maximum throughput, per master. Results go to bench/results/simulate-<date>[-cluster].json;
// docs/capacity.md and its charts are generated from the latest single-Redis and Cluster results.
// `--help` lists the options. Exit status 0 when every phase ran, 1 otherwise.
import { execFileSync, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/harness.mjs';
import { installExitHandlers, killAll, sleep } from './lib/procs.mjs';
import { redisVersion } from './lib/redis.mjs';
import { Beats, Deadlines, dist, newCounters, pool, Population, Publisher, Sessions, Sweeper } from './lib/sim-load.mjs';
import { closeMasters, diff, existing, masterClients, removePrefix, resetStats, snapshot, startCluster, startSingle, streams } from './lib/sim-redis.mjs';
import { writeCapacityDoc } from './lib/sim-report.mjs';

const HELP = `npm run simulate -- [options]
  --devices N            simulated devices, all online (default 100000)
  --redis URL            use this Redis (its keys under --prefix are removed afterwards; never flushed)
  --cluster              start a Redis Cluster of --masters masters (default: start one redis-server)
  --cluster-nodes LIST   use this Cluster (host:port,...)
  --masters N            masters of a started Cluster (default 3)
  --seconds S            length of the realistic mix (default 60)
  --hb-seconds S         heartbeat-only measurement window (default 10)
  --publish-seconds S    publish-only measurement window (default 5)
  --publish-rate R       publishes/s in that window (default 1000)
  --mix-publish-rate R   publishes/s during the mix (default 200)
  --churn R              disconnect+reconnect per second during the mix (default devices/3600)
  --silent-share F       share of churn that dies silently and is swept (default 0.1)
  --intervals LIST       learned heartbeat intervals in seconds, one per network in turn
                         (default 25,25,25,25,25,10,15,20,30,45,60: 25 s default, spread 10-60 s)
  --networks N           network keys (default 50)
  --instances N          simulated gateway instances holding the sessions (default 1: one expiry
                         index holds all, the sweep's worst case)
  --sweep-expired N      expired sessions per sweep probe (default 1000; the last probe also 10x)
  --throughput-seconds S maximum-throughput window (default 10)
  --workers N            load processes for the maximum-throughput window (default 2)
  --concurrency N        heartbeats in flight per process (default 4000)
  --beat-budget R        most heartbeats/s this process sends on schedule (default 4000): when the
                         devices owe more at their real intervals, every interval (and so every
                         ttl) is stretched by the same factor, said in the results; the
                         maximum-throughput window is not limited by it
  --prefix P             key prefix (default: the app's; sim: with --redis / --cluster-nodes)
  --out DIR              where the results JSON goes (default bench/results)
  --docs PATH|none       regenerate this capacity page from the latest results (default docs/capacity.md)
  --report-only          only regenerate --docs from the results in --out`;

const { values: a } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    redis: { type: 'string' },
    cluster: { type: 'boolean', default: false },
    'cluster-nodes': { type: 'string' },
    masters: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '60' },
    'hb-seconds': { type: 'string', default: '10' },
    'publish-seconds': { type: 'string', default: '5' },
    'publish-rate': { type: 'string', default: '1000' },
    'mix-publish-rate': { type: 'string', default: '200' },
    churn: { type: 'string' },
    'silent-share': { type: 'string', default: '0.1' },
    intervals: { type: 'string', default: '25,25,25,25,25,10,15,20,30,45,60' },
    networks: { type: 'string', default: '50' },
    instances: { type: 'string', default: '1' },
    'sweep-expired': { type: 'string', default: '1000' },
    'throughput-seconds': { type: 'string', default: '10' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '4000' },
    'beat-budget': { type: 'string', default: '4000' },
    prefix: { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench/results') },
    docs: { type: 'string', default: join(ROOT, 'docs/capacity.md') },
    'report-only': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (a.help) {
  console.log(HELP);
  process.exit(0);
}

/** A positive number option, or a clear error. */
function num(name, { min = 0, int = true } = {}) {
  const v = Number(a[name]);
  if (!Number.isFinite(v) || v < min || (int && !Number.isInteger(v))) {
    console.error(`--${name} must be ${int ? 'an integer' : 'a number'} >= ${min} (got ${a[name]})`);
    process.exit(2);
  }
  return v;
}

const log = (msg) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const r2 = (x) => Math.round(x * 100) / 100;
const perOp = (x, n) => (n > 0 ? r2(x / n) : null);
const outDir = resolve(a.out);
const docsPath = a.docs === 'none' ? null : resolve(a.docs);

if (a['report-only']) {
  if (!docsPath) throw new Error('--report-only needs --docs');
  const written = writeCapacityDoc(outDir, docsPath);
  log(`wrote ${written.join(', ')}`);
  process.exit(0);
}

const opts = {
  devices: num('devices', { min: 100 }),
  masters: num('masters', { min: 1 }),
  seconds: num('seconds', { min: 1 }),
  hbSeconds: num('hb-seconds', { min: 1 }),
  publishSeconds: num('publish-seconds', { min: 1 }),
  publishRate: num('publish-rate', { min: 1 }),
  mixPublishRate: num('mix-publish-rate'),
  silentShare: num('silent-share', { int: false }),
  networks: num('networks', { min: 1 }),
  instances: num('instances', { min: 1 }),
  sweepExpired: num('sweep-expired', { min: 1 }),
  throughputSeconds: num('throughput-seconds', { min: 1 }),
  workers: num('workers', { min: 1 }),
  concurrency: num('concurrency', { min: 1 }),
  beatBudget: num('beat-budget', { min: 1 }),
};
opts.churn = a.churn === undefined ? opts.devices / 3600 : num('churn', { int: false });
opts.intervals = a.intervals.split(',').map((s) => Number(s) * 1000);
if (opts.intervals.some((v) => !Number.isFinite(v) || v < 1000)) {
  console.error('--intervals must be a comma-separated list of seconds, each >= 1');
  process.exit(2);
}
// One client process cannot send what a million devices owe in real time (about 40k/s); Redis's
// cost per heartbeat does not depend on the interval, so the schedule is slowed down instead.
{
  const perNetwork = Array.from({ length: opts.networks }, (_, k) => opts.intervals[k % opts.intervals.length]);
  const owedPerDevice = perNetwork.reduce((sum, v) => sum + 1000 / v, 0) / perNetwork.length;
  opts.realMeanIntervalMs = Math.round(1000 / owedPerDevice);
  opts.realBeatRate = Math.round(opts.devices * owedPerDevice);
  opts.intervalScale = Math.max(1, Math.round((opts.realBeatRate / opts.beatBudget) * 100) / 100);
  opts.scheduledIntervals = opts.intervals.map((v) => Math.round(v * opts.intervalScale));
}
if (a.redis && (a.cluster || a['cluster-nodes'])) {
  console.error('--redis and --cluster / --cluster-nodes exclude each other');
  process.exit(2);
}

const { loadConfig } = dist('config/app-config.js');
const { RedisConnection } = dist('redis/redis-connection.js');
const { createRedisPresenceStore } = dist('presence/presence.module.js');
const { createRedisNotificationStore } = dist('notifications/notifications.module.js');
const { HeartbeatPolicy } = dist('presence/heartbeat-policy.js');
const { SWEEP_BATCH, SWEEP_MAX_BATCHES } = dist('gateway/session-sweeper.service.js');

installExitHandlers();
const started = Date.now();
const tag = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0');
let target;
let masters = [];
let redis;
let failed = null;
const results = {
  kind: 'simulate',
  command: `npm run simulate -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  commit: gitCommit(),
  options: opts,
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: r2(os.totalmem() / 2 ** 30), node: process.version, redis: redisVersion() },
  phases: {},
};

try {
  target = a.redis || a['cluster-nodes'] ? existing({ url: a.redis, clusterNodes: a['cluster-nodes'] }) : a.cluster ? await startCluster(opts.masters) : await startSingle();
  results.redis = { kind: target.kind, own: target.own, nodes: target.nodes };
  const prefix = a.prefix ?? (target.own ? undefined : 'sim:');
  const env = {
    ...target.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'silent',
    // Redis capacity is measured here, not the gateway's shedding: a slow answer is waited for.
    REDIS_COMMAND_TIMEOUT_MS: '10000',
    ...(prefix ? { REDIS_PREFIX: prefix } : {}),
  };
  const config = loadConfig(env);
  results.prefix = config.redisPrefix;
  redis = new RedisConnection(config);
  await Promise.race([redis.connect(), sleep(30_000).then(() => Promise.reject(new Error('the Redis connections were not ready within 30 s')))]);
  masters = await masterClients(target);
  if (target.own) await resetStats(masters);
  log(`Redis: ${target.kind} (${masters.map((m) => m.name).join('; ')}), prefix ${config.redisPrefix}, ${opts.devices} devices`);
  if (!target.own) log('an existing Redis: its INFO counts whatever else it serves too, so memory, CPU and command figures include that');

  const presence = createRedisPresenceStore(config, redis);
  const notifications = createRedisNotificationStore(config, redis);
  const policy = new HeartbeatPolicy(config.heartbeat, config.heartbeatTtlSlackMs);
  const cohortSize = Math.max(1_000, Math.round(opts.devices * 0.05));
  const pop = new Population({ devices: opts.devices + cohortSize, cohortFrom: opts.devices, tag, intervals: opts.scheduledIntervals, networks: opts.networks, instances: opts.instances, policy });
  const counters = newCounters();
  const sessions = new Sessions(pop, presence, counters);
  const beats = new Beats(pop, presence, sessions, counters, { maxInFlight: opts.concurrency });
  const sweeper = new Sweeper(pop, presence, sessions, counters, { batch: SWEEP_BATCH, maxBatches: SWEEP_MAX_BATCHES, graceMs: config.presenceEventGraceMs });
  const publisher = new Publisher(pop, presence, notifications, counters, { ...config, ackDelayMs: 20 });
  const deadlines = new Deadlines(notifications, counters, presence.partitions);
  results.config = {
    heartbeatDefaultMs: config.heartbeat.interval,
    ttlSlackMs: config.heartbeatTtlSlackMs,
    sweepIntervalMs: config.sweepIntervalMs,
    sweepBatch: SWEEP_BATCH,
    eventGraceMs: config.presenceEventGraceMs,
    eventRetentionMs: config.eventRetentionMs,
    deviceRetentionMs: config.deviceRetentionMs,
    notificationRetentionMs: config.notificationRetentionMs,
    inboxMaxSize: config.inboxMaxSize,
    realMeanIntervalMs: opts.realMeanIntervalMs,
    realBeatRate: opts.realBeatRate,
    intervalScale: opts.intervalScale,
  };
  if (opts.intervalScale > 1) {
    log(`the devices owe ${opts.realBeatRate} heartbeats/s at their learned intervals (mean ${opts.realMeanIntervalMs} ms); this process sends at most ${opts.beatBudget}/s, so every interval and ttl is stretched x${opts.intervalScale}`);
  }

  const snap = () => snapshot(masters);
  const quiet = async () => {
    beats.pause();
    await beats.drain();
  };
  beats.start();

  // 1. Fill, with sweep probes among 1 %, 10 % and 100 % of the devices online.
  log(`fill: connecting ${opts.devices} devices (heartbeats start on each device's schedule as it connects)`);
  const checkpoints = [...new Set([Math.round(opts.devices / 100), Math.round(opts.devices / 10), opts.devices].filter((c) => c >= 1_000 || c === opts.devices))];
  const fill = { segments: [], memory: 0, dataset: 0, keys: 0, tableBytesPerKey: 0, streamBytes: 0, calls: 0, cpuMs: 0, wallMs: 0 };
  const probes = [];
  let connected = 0;
  // Found by SCAN after each fill segment, then read directly; with partitions a stream appears with
  // the first event of its partition, so every count looks again.
  const streamsNow = () => streams(masters, config.redisPrefix, config.keys.partitions > 1 ? null : streamKeys);
  let streamKeys = null;
  let stream0 = { bytes: 0, entries: 0 };
  for (const cp of checkpoints) {
    const s0 = await snap();
    const t0 = performance.now();
    await pool(connected, cp, 1_000, (i) => sessions.connect(i));
    const s1 = await snap();
    const st1 = await streams(masters, config.redisPrefix);
    streamKeys = st1.list;
    const d = diff(s0, s1);
    fill.memory += d.memoryDelta;
    fill.dataset += d.datasetDelta;
    fill.keys += d.keysDelta;
    fill.tableBytesPerKey = d.tableBytesPerKey;
    fill.streamBytes += st1.bytes - stream0.bytes;
    fill.calls += d.calls;
    fill.cpuMs += d.cpuMs;
    fill.wallMs += performance.now() - t0;
    fill.segments.push({ online: cp, connectsPerSecond: Math.round(((cp - connected) / (performance.now() - t0)) * 1000) });
    connected = cp;
    log(`  ${cp} online (${fill.segments.at(-1).connectsPerSecond} connects/s, ${counters.heartbeats} heartbeats so far); sweep probe`);
    await quiet();
    const sizes = cp === opts.devices ? [opts.sweepExpired, opts.sweepExpired * 10] : [opts.sweepExpired];
    for (const expired of sizes) {
      // A shared machine makes single timings noisy: the median of three for the usual batch.
      const reps = expired === opts.sweepExpired ? 3 : 1;
      const runs = [];
      for (let k = 0; k < reps; k++) runs.push(await sweepProbe(presence, expired, cp, `${probes.length}-${k}`));
      const ms = runs.map((x) => x.ms).sort((x, y) => x - y);
      probes.push({ online: cp, expired, ms: ms[Math.floor(ms.length / 2)], runsMs: ms, calls: runs[0].calls });
    }
    for (const p of probes.filter((x) => x.online === cp)) log(`    ${p.expired} expired among ${cp} online: ${p.ms} ms in ${p.calls} claims${p.runsMs.length > 1 ? ` (median of ${p.runsMs.join(', ')})` : ''}`);
    beats.resume();
    stream0 = await streamsNow();
  }
  const afterFill = await streamsNow();
  results.phases.fill = {
    devices: opts.devices,
    seconds: r2(fill.wallMs / 1000),
    connectsPerSecond: Math.round((opts.devices / fill.wallMs) * 1000),
    heartbeatsDuringFill: counters.heartbeats,
    memoryBytes: fill.memory,
    eventLogBytes: fill.streamBytes,
    bytesPerOnlineDevice: perDevice(fill.dataset - fill.streamBytes, fill.keys, fill.tableBytesPerKey, opts.devices),
    keysPerOnlineDevice: r2(fill.keys / opts.devices),
    usedMemoryPerOnlineDevice: Math.round((fill.memory - fill.streamBytes) / opts.devices),
    eventLog: { ...afterFill, bytesPerEvent: afterFill.entries ? Math.round(afterFill.bytes / afterFill.entries) : null },
    segments: fill.segments,
  };
  results.phases.sweep = { probes, batch: SWEEP_BATCH };
  log(`  memory: ${results.phases.fill.bytesPerOnlineDevice} B per online device (+ event log ${afterFill.bytes} B for ${afterFill.entries} events)`);

  // 2. Idle: what N online devices cost Redis with no traffic (active expiry of keys with a TTL, cron).
  {
    await quiet();
    const s0 = await snap();
    await sleep(3_000);
    const d = diff(s0, await snap());
    beats.resume();
    results.phases.idle = { seconds: r2(d.wallMs / 1000), redisCpuPercent: r2((d.cpuMs / d.wallMs) * 100), commandsPerSecond: Math.round((d.calls / d.wallMs) * 1000) };
    log(`idle with ${opts.devices} online: Redis at ${results.phases.idle.redisCpuPercent} % of a core`);
  }

  // 3. Heartbeats only, at the rate the online devices owe (on the stretched schedule, see --beat-budget).
  await waitForBacklog(beats, 60_000);
  beats.resetStats();
  {
    const owed = pop.beatRate();
    // Opened and closed with nothing in flight, so Redis ran exactly the heartbeats counted here.
    await quiet();
    const c0 = counters.heartbeats;
    const s0 = await snap();
    beats.resume();
    await sleep(opts.hbSeconds * 1000);
    await quiet();
    const s1 = await snap();
    beats.resume();
    const n = counters.heartbeats - c0;
    const d = diff(s0, s1);
    results.phases.heartbeats = {
      owedPerSecond: Math.round(owed),
      achievedPerSecond: Math.round((n / d.wallMs) * 1000),
      heartbeats: n,
      ...costs(d, n),
      // Less the idle cost measured just before: what the heartbeats themselves added.
      marginalCpuUs: perOp((d.cpuMs - (results.phases.idle.redisCpuPercent / 100) * d.wallMs) * 1000, n),
      latencyMs: beats.latency.summary(),
      lateMs: beats.lag.summary(),
    };
    const h = results.phases.heartbeats;
    log(`heartbeats: ${h.achievedPerSecond}/s (owed ${h.owedPerSecond}/s), ${h.commands} commands, ${h.cpuUs} µs Redis CPU, ${h.netInBytes}+${h.netOutBytes} B per heartbeat`);
  }

  // 4. Offline but known: a cohort connects, then disconnects (held offlines released).
  {
    await quiet();
    const from = opts.devices;
    const to = opts.devices + cohortSize;
    const st0 = await streamsNow();
    const s0 = await snap();
    await pool(from, to, 1_000, (i) => sessions.connect(i, { firstBeatIn: 10 }));
    const s1 = await snap();
    const st1 = await streamsNow();
    await pool(from, to, 1_000, (i) => sessions.disconnect(i));
    const sd = await snap();
    // Flap suppression holds each offline for PRESENCE_EVENT_GRACE_MS: release them as a sweeper would once due.
    await Promise.all(
      Array.from({ length: presence.partitions }, async (_, p) => {
        for (;;) {
          const n = await presence.releaseHeldOfflines(p, Date.now() + config.presenceEventGraceMs + 1, SWEEP_BATCH);
          if (n < SWEEP_BATCH) break;
        }
      }),
    );
    const s2 = await snap();
    const st2 = await streamsNow();
    beats.resume();
    const connect = diff(s0, s1);
    const disconnect = diff(s1, sd);
    results.phases.offline = {
      devices: cohortSize,
      // The cohort's sessions sit on an instance of their own, so its expiry index starts empty and
      // is gone again once they are offline: the big index's internal table, which doubles at
      // powers of two, is not touched by the cohort.
      bytesPerOfflineKnownDevice: perDevice(diff(s0, s2).datasetDelta - (st2.bytes - st0.bytes), diff(s0, s2).keysDelta, diff(s0, s2).tableBytesPerKey, cohortSize),
      cohortBytesPerOnlineDevice: perDevice(connect.datasetDelta - (st1.bytes - st0.bytes), connect.keysDelta, connect.tableBytesPerKey, cohortSize),
      keysPerOfflineKnownDevice: r2(diff(s0, s2).keysDelta / cohortSize),
      usedMemoryPerOnlineDevice: Math.round((connect.memoryDelta - (st1.bytes - st0.bytes)) / cohortSize),
      usedMemoryPerOfflineKnownDevice: Math.round((diff(s0, s2).memoryDelta - (st2.bytes - st0.bytes)) / cohortSize),
      eventsPerConnect: r2((st1.entries - st0.entries) / cohortSize),
      eventsPerDisconnect: r2((st2.entries - st1.entries) / cohortSize),
      connect: costs(connect, cohortSize),
      disconnect: costs(disconnect, cohortSize),
    };
    const o = results.phases.offline;
    log(`offline: ${o.bytesPerOfflineKnownDevice} B per offline known device; connect ${o.connect.commands} commands, ${o.connect.cpuUs} µs`);
  }

  // 5. Publishes only (to devices, users and groups of 10; half with ttl 3600 s), with the acks of online targets.
  {
    await quiet();
    const c0 = { ...counters };
    const st0 = await streamsNow();
    const s0 = await snap();
    const sent = await publisher.run(opts.publishRate, opts.publishSeconds * 1000);
    const s1 = await snap();
    const st1 = await streamsNow();
    beats.resume();
    const d = diff(s0, s1);
    const n = counters.publishes - c0.publishes;
    results.phases.publish = {
      rate: opts.publishRate,
      sent,
      publishes: n,
      achievedPerSecond: Math.round((n / d.wallMs) * 1000),
      targetsPerPublish: perOp(counters.targets - c0.targets, n),
      onlineTargetsPerPublish: perOp(counters.onlineTargets - c0.onlineTargets, n),
      queuedPerPublish: perOp(counters.queued - c0.queued, n),
      acksPerPublish: perOp(counters.acks - c0.acks, n),
      payloadBytes: perOp(counters.payloadBytes - c0.payloadBytes, n),
      ...costs(d, n),
      retainedBytesPerPublish: perDevice(d.datasetDelta - (st1.bytes - st0.bytes), d.keysDelta, d.tableBytesPerKey, n),
      usedMemoryPerPublish: Math.round((d.memoryDelta - (st1.bytes - st0.bytes)) / n),
      eventLogBytesPerPublish: Math.round((st1.bytes - st0.bytes) / n),
      latencyMs: publisher.latency.summary(),
    };
    const p = results.phases.publish;
    log(`publish: ${p.achievedPerSecond}/s, ${p.targetsPerPublish} targets, ${p.commands} commands, ${p.cpuUs} µs Redis CPU, ${p.retainedBytesPerPublish} B kept per publish`);
  }

  // 6. Maximum heartbeat throughput: forked load processes, closed loop.
  {
    await quiet();
    const s0 = await snap();
    const t0 = performance.now();
    const per = Math.ceil(opts.devices / opts.workers);
    const jobs = Array.from({ length: opts.workers }, (_, w) => ({ from: w * per, to: Math.min(opts.devices, (w + 1) * per) })).filter((j) => j.to > j.from);
    const replies = await Promise.all(
      jobs.map((j) =>
        runWorker({
          env,
          population: { devices: pop.size, cohortFrom: opts.devices, tag, intervals: opts.scheduledIntervals, networks: opts.networks, instances: opts.instances },
          gens: pop.gen,
          from: j.from,
          to: j.to,
          concurrency: opts.concurrency,
          durationMs: opts.throughputSeconds * 1000,
        }),
      ),
    );
    const s1 = await snap();
    const wallMs = performance.now() - t0;
    beats.resume();
    const d = diff(s0, s1);
    const count = replies.reduce((s, x) => s + x.count, 0);
    const hottest = d.per.reduce((h, m) => (m.calls > h.calls ? m : h), d.per[0]);
    // The window includes the processes' start; the rate is counted over their measured seconds.
    const hottestCpu = hottest.cpuMs / (opts.throughputSeconds * 1000);
    results.phases.throughput = {
      workers: jobs.length,
      concurrencyPerWorker: opts.concurrency,
      seconds: r2(wallMs / 1000),
      heartbeatsPerSecond: Math.round((count / (opts.throughputSeconds * 1000)) * 1000),
      refused: replies.reduce((s, x) => s + x.refused, 0),
      errors: replies.reduce((s, x) => s + x.errors, 0),
      latencyMs: replies.map((x) => x.latency),
      hottestMasterCpuShare: r2(hottestCpu),
      hottestMasterCallShare: r2(hottest.calls / Math.max(1, d.calls)),
      // Redis runs commands on one thread: heartbeats per CPU-second of the hottest master is what
      // the deployment does once that master's thread is at 100 % of a core (the others idle or not).
      ceilingEstimate: Math.round(count / (hottest.cpuMs / 1000)),
      ...costs(d, count),
    };
    const t = results.phases.throughput;
    log(`throughput: ${t.heartbeatsPerSecond} heartbeats/s from ${t.workers} processes; hottest master at ${Math.round(t.hottestMasterCpuShare * 100)} % CPU with ${Math.round(t.hottestMasterCallShare * 100)} % of the commands`);
    for (const m of t.perMaster) log(`  ${m.name}: ${m.callShare * 100} % of commands, ${m.cpuPercent} % CPU`);
  }

  // 7. The realistic mix: heartbeats, churn, silent deaths, publishes and sweeps together.
  {
    await waitForBacklog(beats, 60_000);
    beats.resetStats();
    log(`mix: ${opts.seconds} s; churn ${r2(opts.churn)}/s (${opts.silentShare * 100} % silent), ${opts.mixPublishRate} publishes/s, sweep every ${config.sweepIntervalMs} ms`);
    const c0 = { ...counters };
    const s0 = await snap();
    const timers = new Set();
    const later = (ms, fn) => {
      const t = setTimeout(() => (timers.delete(t), fn()), ms);
      timers.add(t);
    };
    const end = performance.now() + opts.seconds * 1000;
    const timeline = [];
    let churnDebt = 0;
    const sweepLoop = (async () => {
      while (performance.now() < end) {
        await sleep(Math.min(config.sweepIntervalMs, end - performance.now()));
        await sweeper.sweepOnce().catch((err) => (counters.errors.sweep = (counters.errors.sweep ?? 0) + 1, (counters.lastError = err.message)));
      }
    })();
    const deadlineLoop = (async () => {
      while (deadlines.present && performance.now() < end) {
        await sleep(Math.min(500, config.sweepIntervalMs, end - performance.now()));
        await deadlines.sweepOnce().catch((err) => (counters.errors.deadlines = (counters.errors.deadlines ?? 0) + 1, (counters.lastError = err.message)));
      }
    })();
    const publishLoop = opts.mixPublishRate > 0 ? publisher.run(opts.mixPublishRate, opts.seconds * 1000) : Promise.resolve(0);
    let last = s0;
    let lastBeats = counters.heartbeats;
    let lastMark = performance.now();
    while (performance.now() < end) {
      await sleep(100);
      churnDebt += opts.churn / 10;
      for (; churnDebt >= 1; churnDebt--) {
        const i = Math.floor(Math.random() * opts.devices);
        if (pop.state[i] !== 1) continue;
        if (Math.random() < opts.silentShare) {
          pop.state[i] = 2; // stops beating; swept after its ttl, back later with a new session
          later(policy.ttlFor(pop.interval(i)) + 5_000 + Math.random() * 30_000, () => pop.state[i] !== 1 && void sessions.connect(i));
        } else {
          void sessions.disconnect(i).then(() => later(1_000 + Math.random() * 9_000, () => pop.state[i] === 3 && void sessions.connect(i)));
        }
      }
      if (performance.now() - lastMark >= 5_000) {
        const s = await snap();
        const d = diff(last, s);
        timeline.push({
          t: r2((performance.now() - (end - opts.seconds * 1000)) / 1000),
          heartbeatsPerSecond: Math.round(((counters.heartbeats - lastBeats) / d.wallMs) * 1000),
          commandsPerSecond: Math.round((d.calls / d.wallMs) * 1000),
          redisCpuPercent: d.per.map((m) => Math.round((m.cpuMs / d.wallMs) * 100)),
          backlog: beats.backlog(),
        });
        last = s;
        lastBeats = counters.heartbeats;
        lastMark = performance.now();
      }
    }
    await Promise.all([sweepLoop, deadlineLoop, publishLoop]);
    const s1 = await snap();
    for (const t of timers) clearTimeout(t);
    const d = diff(s0, s1);
    const delta = (k) => counters[k] - c0[k];
    results.phases.mix = {
      seconds: r2(d.wallMs / 1000),
      owedHeartbeatsPerSecond: Math.round(pop.beatRate()),
      perSecond: {
        heartbeats: Math.round((delta('heartbeats') / d.wallMs) * 1000),
        connects: r2((delta('connects') / d.wallMs) * 1000),
        disconnects: r2((delta('disconnects') / d.wallMs) * 1000),
        publishes: r2((delta('publishes') / d.wallMs) * 1000),
        acks: r2((delta('acks') / d.wallMs) * 1000),
        swept: r2((delta('swept') / d.wallMs) * 1000),
        commands: Math.round((d.calls / d.wallMs) * 1000),
      },
      expiredBeats: delta('expiredBeats'),
      falselyExpired: delta('falselyExpired'),
      sweepMs: sweeper.durations.summary(),
      ...(deadlines.present ? { deadlineSweepMs: deadlines.durations.summary(), deadlinesClaimed: delta('deadlinesClaimed') } : {}),
      heartbeatLatencyMs: beats.latency.summary(),
      heartbeatLateMs: beats.lag.summary(),
      ...costs(d, delta('heartbeats')),
      timeline,
    };
    const m = results.phases.mix;
    log(`mix: ${m.perSecond.heartbeats} heartbeats/s (owed ${m.owedHeartbeatsPerSecond}), ${m.perSecond.commands} commands/s, Redis CPU ${m.perMaster.map((x) => `${x.cpuPercent} %`).join(' / ')}, sweeps p50 ${m.sweepMs.p50} ms, late beats p99 ${m.heartbeatLateMs.p99} ms`);
  }

  beats.stop();
  await beats.drain();
  const final = await snap();
  results.final = {
    keys: final.reduce((s, m) => s + m.keys, 0),
    usedMemory: final.reduce((s, m) => s + m.usedMemory, 0),
    perMaster: final.map((m) => ({ name: m.name, keys: m.keys, usedMemory: m.usedMemory })),
    online: pop.count(1),
    offlineKnown: pop.count(3),
  };
  results.counters = { ...counters, errors: counters.errors, lastError: counters.lastError };
  if (Object.keys(counters.errors).length) log(`store calls that failed: ${JSON.stringify(counters.errors)}; the last: ${counters.lastError}`);
  for (const m of results.final.perMaster) log(`keys: ${m.name}: ${m.keys} keys, ${Math.round(m.usedMemory / 2 ** 20)} MiB`);
} catch (err) {
  failed = err;
  console.error(`simulation failed: ${err.stack ?? err}`);
} finally {
  try {
    if (target && !target.own && masters.length) log(`removed ${await removePrefix(masters, results.prefix)} keys under ${results.prefix}`);
  } catch (err) {
    console.error(`cleanup failed: ${err.message}`);
  }
  closeMasters(masters);
  await redis?.onApplicationShutdown().catch(() => undefined);
  await target?.stop();
  await killAll();
}

results.seconds = Math.round((Date.now() - started) / 1000);
results.failed = failed ? String(failed.message ?? failed) : undefined;
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `simulate-${results.date.slice(0, 10)}${results.redis?.kind === 'cluster' ? '-cluster' : ''}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
log(`results: ${file}`);
if (!failed && docsPath) log(`wrote ${writeCapacityDoc(outDir, docsPath).join(', ')}`);
process.exit(failed ? 1 : 0);

/**
 * Bytes per item: the dataset's growth (allocator bytes of keys and values, from MEMORY STATS) plus
 * the keys' share of the keyspace's hash tables at their current average cost per key. A
 * used_memory difference would jump whenever a table doubles (kept in the results as
 * usedMemoryPer...).
 */
function perDevice(datasetBytes, keys, tableBytesPerKey, n) {
  return Math.round((datasetBytes + keys * tableBytesPerKey) / n);
}

/** Redis's cost of `n` operations in a window: per operation, and per master. */
function costs(d, n) {
  return {
    commands: perOp(d.calls, n),
    roundTrips: perOp((d.commands.evalsha ?? 0) + (d.commands.eval ?? 0), n),
    cpuUs: perOp(d.cpuMs * 1000, n),
    netInBytes: perOp(d.netIn, n),
    netOutBytes: perOp(d.netOut, n),
    commandMix: Object.fromEntries(Object.entries(d.commands).sort((x, y) => y[1] - x[1]).slice(0, 12).map(([k, v]) => [k, perOp(v, n)])),
    perMaster: d.per.map((m) => ({
      name: m.name,
      keys: m.keys,
      callShare: r2(m.calls / Math.max(1, d.calls)),
      cpuPercent: Math.round((m.cpuMs / m.wallMs) * 100),
      calls: m.calls,
    })),
  };
}

/**
 * Sweep time among `online` devices: `expired` sessions recorded 10 s ago with a 5 s ttl on
 * instance sim-gw-0, then claimExpired in SWEEP_BATCH batches until a short one, as
 * SessionSweeper does. Heartbeats are paused meanwhile, so the time is the sweep's own.
 */
async function sweepProbe(store, expired, online, round) {
  const now = Date.now();
  await pool(0, expired, 1_000, (k) =>
    store.connect({
      deviceId: `p-${tag}-${round}-${k.toString(36).padStart(8, '0')}`,
      userId: `pu-${tag}-${round}-${k}`,
      sessionId: randomUUID(),
      instanceId: 'sim-gw-0',
      platform: 'ios',
      now: now - 10_000,
      interval: 2_000,
      ttl: 5_000,
    }),
  );
  const t0 = performance.now();
  let claimed = 0;
  let calls = 0;
  const live = new Map([['sim-gw-0', 0]]);
  // Every partition at once, as SessionSweeper claims over its leases (one holder here: the worst case).
  await Promise.all(
    Array.from({ length: store.partitions }, async (_, p) => {
      for (;;) {
        const got = await store.claimExpired(p, now, SWEEP_BATCH, live);
        calls++;
        claimed += got.length;
        if (got.length < SWEEP_BATCH) break;
      }
    }),
  );
  const ms = r2(performance.now() - t0);
  if (claimed !== expired) throw new Error(`sweep probe among ${online}: claimed ${claimed}, expected ${expired}`);
  return { expired, ms, calls };
}

async function waitForBacklog(beats, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (beats.backlog() > 0 && Date.now() < deadline) await sleep(100);
}

function runWorker(job) {
  return new Promise((resolvePromise, reject) => {
    const child = fork(join(ROOT, 'bench/lib/sim-worker.mjs'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (reply) => (reply.error ? reject(new Error(reply.error)) : resolvePromise(reply)));
    child.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
    child.send(job);
  });
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
  } catch {
    return null;
  }
}
