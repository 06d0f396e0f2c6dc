// docs/capacity.md and its charts, generated from the latest `npm run simulate` results (one
// Redis and a Cluster) plus the gateway's own per-process figures from the latest full bench.
// The sizing model is here, in one place, with every assumption named: the page prints them.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { barChart } from './svg.mjs';

/** What the model assumes beyond what was measured; printed on the page. */
export const ASSUMPTIONS = {
  sizes: [100_000, 1_000_000, 10_000_000, 100_000_000],
  onlineShare: 1, // every device online at the peak
  knownOfflinePerOnline: 1, // as many known-but-offline devices again (DEVICE_RETENTION_DAYS)
  reconnectsPerDevicePerDay: 24, // each device reconnects about once an hour (app switches, networks)
  notificationsPerDevicePerDay: 5,
  redisCoreUtilization: 0.7, // plan a master's command thread at 70 % of a core
  masterMemoryGiB: 25, // usable per master (a 32 GiB host, room for fork/replication buffers)
  nicGbit: 10,
  gatewayCoreUtilization: 0.7,
  thisHost: { cores: 2, processShareOfMeasuredMax: 0.9 },
  // The partitioned layout (README "Redis key layout"): 1024 partitions, one slot each.
  partitions: 1024,
  bigHost: { cores: 32, memoryGiB: 128, fdLimit: 1_048_576, kernelBytesPerSocket: 10_240 },
};

/** Figures from the full bench (docs/performance.md) when no bench results are at hand. */
const PERF_FALLBACK = { source: 'docs/performance.md, full run of 2026-11-22', devicesPerProcess: 19_975, fdLimit: 20_000, rssPerConnectionKb: 16.1, cpuMsPerHeartbeat: 0.146, cpuMsPerConnect: 0.876, cpuMsPerPost: 0.951 };

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The latest simulate results of each kind: latest date first, then the most devices. */
export function latestResults(dir) {
  const files = readdirSync(dir).filter((f) => /^simulate-\d{4}-\d{2}-\d{2}(-cluster)?\.json$/.test(f));
  const pick = (cluster) =>
    files
      .filter((f) => f.endsWith('-cluster.json') === cluster)
      .map((f) => ({ file: join(dir, f), r: readJson(join(dir, f)) }))
      .filter(({ r }) => !r.failed && r.phases?.mix)
      .sort((x, y) => y.r.date.slice(0, 10).localeCompare(x.r.date.slice(0, 10)) || y.r.options.devices - x.r.options.devices)[0];
  return { single: pick(false), cluster: pick(true) };
}

/** The gateway's per-process figures from the latest full bench results in `dir`, if any. */
export function perfFigures(dir) {
  const latest = readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort().at(-1);
  if (!latest) return PERF_FALLBACK;
  try {
    const r = readJson(join(dir, latest));
    const c = r.scenarios.connections.gateway;
    const hb = r.scenarios.heartbeats.gateway.levels.find((l) => l.targetPerSecond === 5_000) ?? r.scenarios.heartbeats.gateway.levels[0];
    const push = r.scenarios.push?.gateway?.oneDevice;
    return {
      source: `bench/results/${latest}, the full bench of docs/performance.md`,
      devicesPerProcess: c.max?.held ?? PERF_FALLBACK.devicesPerProcess,
      fdLimit: c.max?.fdLimit ?? PERF_FALLBACK.fdLimit,
      rssPerConnectionKb: c.points.at(-1)?.perConnKb ?? PERF_FALLBACK.rssPerConnectionKb,
      cpuMsPerHeartbeat: hb.cpuMsPer1k / 1000,
      cpuMsPerConnect: c.connectTime?.serverCpuMsPerConnection ?? PERF_FALLBACK.cpuMsPerConnect,
      cpuMsPerPost: Number(push?.cpuMsPerPost) || PERF_FALLBACK.cpuMsPerPost,
    };
  } catch {
    return PERF_FALLBACK;
  }
}

/**
 * Bytes a heartbeat costs between device and gateway, computed (not measured): the Socket.IO
 * frames of docs/protocol.md, WebSocket framing (masked from the client), TLS 1.3 records, and
 * one TCP/IPv4 segment each way with timestamps; the pure ACKs the kernel may add are not counted.
 */
export function deviceLinkBytes() {
  const beat = Buffer.byteLength('421["heartbeat",{"interval":25000}]');
  const ack = Buffer.byteLength('431[{"ok":true,"interval":25000,"ttl":65500,"serverTime":1795306718338}]');
  const tls = 22;
  const tcp = 52;
  return { heartbeat: beat + 6 + tls + tcp + (ack + 2 + tls + tcp), beatFrame: beat, ackFrame: ack, perSegment: tls + tcp };
}

const GiB = 2 ** 30;

/** The sizing table: per size, what Redis and the gateways need, from one run's per-operation costs (single Redis or Cluster). */
export function sizing(single, perf, A = ASSUMPTIONS) {
  const p = single.phases;
  const meanIntervalS = single.config.realMeanIntervalMs / 1000;
  const hbCpuUs = p.throughput.cpuUs; // at saturation: pipelines as deep as a busy master sees
  const targetsPerPublish = p.publish.targetsPerPublish || 1;
  const link = deviceLinkBytes();
  const eventsPerCycle = p.offline.eventsPerConnect + p.offline.eventsPerDisconnect;
  const idleUsPerDeviceSecond = ((p.idle.redisCpuPercent / 100) * 1e6) / single.options.devices;
  return A.sizes.map((devices) => {
    const online = devices * A.onlineShare;
    const hbPerSecond = online / meanIntervalS;
    const cyclesPerSecond = (devices * A.reconnectsPerDevicePerDay) / 86_400;
    const targetsPerSecond = (devices * A.notificationsPerDevicePerDay) / 86_400;
    const publishesPerSecond = targetsPerSecond / targetsPerPublish;
    const cpuCores =
      (hbPerSecond * hbCpuUs +
        cyclesPerSecond * (p.offline.connect.cpuUs + p.offline.disconnect.cpuUs) +
        publishesPerSecond * p.publish.cpuUs +
        online * idleUsPerDeviceSecond) /
      1e6;
    const memory = {
      online: online * p.fill.bytesPerOnlineDevice,
      offlineKnown: devices * A.knownOfflinePerOnline * p.offline.bytesPerOfflineKnownDevice,
      eventLog: cyclesPerSecond * eventsPerCycle * (single.config.eventRetentionMs / 1000) * p.fill.eventLog.bytesPerEvent,
      notifications: publishesPerSecond * ((single.config.notificationRetentionMs / 1000) + 1_800) * p.publish.retainedBytesPerPublish,
    };
    const memoryBytes = Object.values(memory).reduce((s, x) => s + x, 0);
    const redisBitsPerSecond =
      8 * (hbPerSecond * (p.heartbeats.netInBytes + p.heartbeats.netOutBytes) +
        cyclesPerSecond * (p.offline.connect.netInBytes + p.offline.connect.netOutBytes + p.offline.disconnect.netInBytes + p.offline.disconnect.netOutBytes) +
        publishesPerSecond * (p.publish.netInBytes + p.publish.netOutBytes));
    const deviceBitsPerSecond = 8 * hbPerSecond * link.heartbeat;
    const need = {
      cpu: cpuCores / A.redisCoreUtilization,
      memory: memoryBytes / (A.masterMemoryGiB * GiB),
      network: redisBitsPerSecond / (A.nicGbit * 1e9),
    };
    const mastersNeeded = Math.max(1, Math.ceil(Math.max(need.cpu, need.memory, need.network)));
    // Gateways on this machine: the per-process descriptor limit, and the CPU those processes use.
    const perProcess = Math.floor(perf.devicesPerProcess * A.thisHost.processShareOfMeasuredMax);
    const processes = Math.ceil(online / perProcess);
    const gwCpuPerDevice = (perf.cpuMsPerHeartbeat / meanIntervalS + (perf.cpuMsPerConnect * A.reconnectsPerDevicePerDay) / 86_400 + (perf.cpuMsPerPost * A.notificationsPerDevicePerDay) / 86_400 / targetsPerPublish) / 1000;
    const gwCores = online * gwCpuPerDevice;
    const thisHosts = Math.max(Math.ceil(processes / Math.max(1, Math.floor((A.thisHost.cores * A.gatewayCoreUtilization) / (perProcess * gwCpuPerDevice)))), Math.ceil(gwCores / (A.thisHost.cores * A.gatewayCoreUtilization)));
    // A bigger host (an assumption): one process per core, limited by CPU or by memory per connection.
    const big = A.bigHost;
    const perCoreByCpu = A.gatewayCoreUtilization / gwCpuPerDevice;
    const perCoreByMemory = (big.memoryGiB * GiB * 0.7) / big.cores / (perf.rssPerConnectionKb * 1024 + big.kernelBytesPerSocket);
    const perBigProcess = Math.min(perCoreByCpu, perCoreByMemory, big.fdLimit * 0.9);
    const bigHosts = Math.ceil(online / (perBigProcess * big.cores));
    const ratios = { CPU: need.cpu, memory: need.memory, network: need.network };
    const [firstName, firstRatio] = Object.entries(ratios).sort((x, y) => y[1] - x[1])[0];
    return {
      devices,
      hbPerSecond,
      cyclesPerSecond,
      publishesPerSecond,
      cpuCores,
      memory,
      memoryBytes,
      redisBitsPerSecond,
      deviceBitsPerSecond,
      need,
      mastersNeeded,
      partitionedMasters: partitionedMasters(Math.max(need.cpu, need.memory, need.network), A.partitions),
      eventLogPerSecond: cyclesPerSecond * eventsPerCycle,
      // The event log is one stream per partition: it spreads with the rest.
      eventLogMasterShare: memory.eventLog / (A.masterMemoryGiB * GiB),
      gateway: { perProcess, processes, gwCores, thisHosts, perBigProcess: Math.floor(perBigProcess), bigHosts, bigLimitedBy: perCoreByCpu < perCoreByMemory ? 'CPU' : 'memory' },
      first: { name: firstName, ratio: firstRatio },
    };
  });
}

/**
 * Masters for `load` (in masters' worth) over `partitions` equal partitions: with m masters the
 * busiest holds ceil(P/m) of them, ceil(P/m) / (P/m) times the mean, and must stay within one.
 */
function partitionedMasters(load, partitions) {
  for (let m = 1; m <= partitions; m++) if ((load / m) * (Math.ceil(partitions / m) / (partitions / m)) <= 1) return m;
  return Infinity;
}

const n0 = (x) => Math.round(x).toLocaleString('en-US');
const n1 = (x) => (Math.round(x * 10) / 10).toLocaleString('en-US');
const n2 = (x) => (Math.round(x * 100) / 100).toLocaleString('en-US');
const size = (d) => (d >= 1e6 ? `${d / 1e6}M` : `${d / 1e3}k`);
const bytes = (b) => (b >= GiB ? `${n1(b / GiB)} GiB` : b >= 2 ** 20 ? `${n1(b / 2 ** 20)} MiB` : `${n0(b)} B`);
const bits = (b) => (b >= 1e9 ? `${n2(b / 1e9)} Gbit/s` : `${n1(b / 1e6)} Mbit/s`);

/** Writes the page and its charts; returns the paths written. */
export function writeCapacityDoc(resultsDir, docPath) {
  const { single, cluster } = latestResults(resultsDir);
  if (!single) throw new Error(`no complete single-Redis simulate results in ${resultsDir}`);
  const perf = perfFigures(resultsDir);
  const rows = sizing(single.r, perf);
  // Past one master the Cluster run's per-operation costs apply: they include what partitioning
  // adds (a second script for user.* on connect and disconnect, one script per target partition).
  const clusterRows = cluster ? sizing(cluster.r, perf) : null;
  const dir = dirname(docPath);
  const stem = basename(docPath, '.md');
  const chart = (name, svg) => {
    const path = join(dir, `${stem}-${name}.svg`);
    writeFileSync(path, svg);
    return path;
  };
  const written = [];
  const S = single.r;
  const p = S.phases;

  const onlineLevels = [...new Set(p.sweep.probes.map((x) => x.online))];
  written.push(
    chart(
      'sweep',
      barChart({
        title: 'Sweep time vs devices online (one expiry index)',
        yLabel: 'ms to claim the expired sessions',
        caption: `claimExpired in batches of ${p.sweep.batch} until a short one, heartbeats paused; median of 3 for ${n0(S.options.sweepExpired)}`,
        categories: onlineLevels.map((o) => `${n0(o)} online`),
        series: [...new Set(p.sweep.probes.map((x) => x.expired))].map((e, i) => ({
          name: `${n0(e)} expired`,
          color: ['#2a6fdb', '#e67e22'][i % 2],
          values: onlineLevels.map((o) => p.sweep.probes.find((x) => x.online === o && x.expired === e)?.ms ?? NaN),
        })),
        format: (v) => `${n1(v)} ms`,
      }),
    ),
  );
  const shareSource = cluster?.r.phases.throughput;
  if (shareSource) {
    written.push(
      chart(
        'masters',
        barChart({
          title: 'Share of Redis commands per master, 3-master Cluster',
          yLabel: '% of commands',
          caption: `1024 partitions, one slot each, over the Cluster's masters; ${cluster.r.command}`,
          categories: shareSource.perMaster.map((m, i) => `master ${i + 1}`),
          series: [
            { name: 'max-throughput heartbeats', color: '#2a6fdb', values: shareSource.perMaster.map((m) => m.callShare * 100) },
            { name: 'realistic mix', color: '#27ae60', values: cluster.r.phases.mix.perMaster.map((m) => m.callShare * 100) },
          ],
          limit: { value: 100 / shareSource.perMaster.length, label: 'an even spread' },
          format: (v) => `${Math.round(v)} %`,
        }),
      ),
    );
  }
  written.push(
    chart(
      'masters-needed',
      barChart({
        title: 'Redis masters needed (model, from measured costs)',
        yLabel: 'masters',
        caption: 'the most of CPU at 70 % of a core, memory at 25 GiB and 10 Gbit/s per master; costs of the Cluster run where there is one',
        categories: rows.map((r) => `${size(r.devices)} devices`),
        series: [
          { name: 'needed for CPU', color: '#2a6fdb', values: (clusterRows ?? rows).map((r) => r.need.cpu) },
          { name: 'needed for memory', color: '#8e44ad', values: (clusterRows ?? rows).map((r) => r.need.memory) },
        ],
        limit: { value: 1, label: 'one master' },
        format: (v) => n1(v),
        log: true,
      }),
    ),
  );
  const docDir = dirname(docPath);
  const rel = (f) => relative(docDir, f);
  const md = page({ single, cluster, perf, rows, clusterRows, rel, charts: written });
  writeFileSync(docPath, md);
  return [docPath, ...written];
}

function page({ single, cluster, perf, rows, clusterRows, rel, charts }) {
  const S = single.r;
  const p = S.phases;
  const C = cluster?.r;
  const A = ASSUMPTIONS;
  const link = deviceLinkBytes();
  const L = [];
  const t = (...cells) => L.push(`| ${cells.join(' | ')} |`);
  L.push('# Capacity');
  L.push('');
  L.push('<!-- Generated by `npm run simulate` (bench/lib/sim-report.mjs) from the results named below; edit the generator, not this page. -->');
  L.push('');
  L.push('How far one deployment goes, from what Redis measurably pays per device, per heartbeat and per publish.');
  L.push('`npm run simulate` drives the gateway\'s real Redis stores (the built `dist/`, created as the app creates');
  L.push('them, over its own connection factory) without sockets, at a realistic mix, and counts everything per Redis');
  L.push('master from `INFO` (memory, commands including those inside Lua, CPU, network). The gateway processes\'');
  L.push(`own limits come from the socket benchmark (${perf.source}).`);
  L.push('');
  const masterShares = C ? C.final.perMaster.map((fm) => fm.keys / Math.max(1, C.final.keys)) : null;
  L.push('**The short answer.** Every device-scoped key carries the hash tag of one of 1024 partitions (README "Redis key');
  L.push('layout"), so on a Cluster presence, inboxes, events and the periodic work spread over the masters: measured on');
  L.push(`${C ? `${C.final.perMaster.length} masters, they held ${masterShares.map((x) => `${Math.round(x * 100)} %`).join(' / ')} of the keys and did ${C.phases.throughput.perMaster.map((m) => `${Math.round(m.callShare * 100)} %`).join(' / ')} of the heartbeat commands` : 'no Cluster run in these results'}.`);
  const limitRow = rows.find((r) => r.mastersNeeded > 1);
  L.push(`${limitRow ? `One master is enough ${rows.indexOf(limitRow) > 0 ? `at ${size(rows[rows.indexOf(limitRow) - 1].devices)} devices` : 'at none of the sizes'} and not at ${size(limitRow.devices)}: its ${limitRow.first.name} is what runs out (${n0(limitRow.first.ratio * 100)} % of the plan for one master).` : 'One master is enough at every size in the table.'}`);
  if (clusterRows) L.push(`On a Cluster the model needs ${clusterRows.map((r) => `${n0(r.partitionedMasters)} master${r.partitionedMasters > 1 ? 's' : ''} for ${size(r.devices)}`).join(', ')} devices (per-operation costs of the Cluster run).`);
  L.push('');
  L.push('## How it was measured');
  L.push('');
  L.push('```bash');
  L.push(S.command);
  if (C) L.push(C.command);
  L.push('```');
  L.push('');
  const m = S.machine;
  L.push(`Machine: ${m.cpuModel}, ${m.cpus} cores shared with other work (results are per operation and from Redis's own CPU`);
  L.push(`counters, so they hold up better than wall-clock rates), ${m.memoryGiB} GiB, Node ${m.node}, Redis ${m.redis}. Commit ${S.commit}, ${S.date.slice(0, 10)};`);
  L.push(`raw figures: \`${rel(single.file)}\`${cluster ? ` and \`${rel(cluster.file)}\`` : ''}.`);
  L.push('');
  L.push('The run, in order (every phase counts `INFO` deltas per master):');
  L.push(`1. **Fill**: ${n0(S.options.devices)} devices connect (users own 2 and 1 devices alternately; ${S.options.networks} network keys, each with a learned`);
  L.push(`   interval from ${S.options.intervals.map((x) => x / 1000).join(', ')} s in turn, mean ${n1(S.config.realMeanIntervalMs / 1000)} s), each heartbeating on its own schedule from the`);
  L.push(`   moment it connects. Sweep probes at 1 %, 10 % and 100 % of the devices.`);
  L.push('2. **Idle** (3 s, no traffic): what the devices cost Redis by merely being there (expiry of keys with a TTL).');
  L.push(`3. **Heartbeats only** (${S.options.hbSeconds} s) at the rate the devices owe.`);
  L.push(`4. **Offline but known**: ${n0(p.offline.devices)} more devices connect, then disconnect (their held offline events released).`);
  L.push(`5. **Publishes only** (${S.options.publishSeconds} s at ${S.options.publishRate}/s): 60 % to one device, 30 % to a user (targets resolved as the REST API does), 10 % to 10`);
  L.push('   devices; half with `ttl` 3600 s (kept for offline devices: inboxes fill), half `ttl` 0; every online target acks.');
  L.push(`6. **Maximum throughput**: ${S.options.workers} processes send heartbeats as fast as Redis answers (${S.options.concurrency} in flight each) for ${S.options.throughputSeconds} s.`);
  L.push(`7. **Mix** (${S.options.seconds} s): heartbeats, churn (${n1(S.options.churn)}/s disconnect + reconnect, ${S.options.silentShare * 100} % of it dying silently and swept), ${S.options.mixPublishRate} publishes/s, the sweeper every ${S.config.sweepIntervalMs} ms.`);
  L.push('');
  if (S.config.intervalScale > 1) {
    L.push(`One client process cannot send what ${n0(S.options.devices)} devices owe in real time (${n0(S.config.realBeatRate)} heartbeats/s), and this`);
    L.push(`machine has 2 cores for the client and Redis together. The schedule was therefore slowed down: every interval and`);
    L.push(`ttl ×${S.config.intervalScale} (\`--beat-budget ${S.options.beatBudget}\`). Redis's work per heartbeat does not depend on the interval, so the`);
    L.push('per-operation figures stand; the real rate is what the model multiplies them by.');
    L.push('');
  }

  L.push('## Measured');
  L.push('');
  L.push('### Memory per device (single Redis)');
  L.push('');
  t('what', 'bytes', 'how');
  t('---', '---', '---');
  t('online device', n0(p.fill.bytesPerOnlineDevice), `dataset growth over the fill / ${n0(S.options.devices)} plus the keyspace tables' share (${p.fill.keysPerOnlineDevice} keys per device); event log and sweep probes left out`);
  t('online device (a cohort on an instance of its own)', n0(p.offline.cohortBytesPerOnlineDevice), `${n0(p.offline.devices)} more devices, right after connecting (no heartbeats yet)`);
  t('offline but known device', n0(p.offline.bytesPerOfflineKnownDevice), `the same cohort after disconnecting, held offline events released (${p.offline.keysPerOfflineKnownDevice} keys per device; kept ${S.config.deviceRetentionMs / 86_400_000} days)`);
  t('event log entry', n0(p.fill.eventLog.bytesPerEvent), `${n0(p.fill.eventLog.entries)} events in ${bytes(p.fill.eventLog.bytes)} (kept ${S.config.eventRetentionMs / 3_600_000} h); ${p.offline.eventsPerConnect} per connect, ${p.offline.eventsPerDisconnect} per disconnect`);
  t('publish (kept for GET /v1/notifications/:id)', n0(p.publish.retainedBytesPerPublish), `${p.publish.targetsPerPublish} targets each, inbox entries included; kept ttl + ${S.config.notificationRetentionMs / 3_600_000} h`);
  L.push('');
  L.push(`After the run: ${n0(S.final.keys)} keys, ${bytes(S.final.usedMemory)} \`used_memory\`.`);
  L.push('');
  L.push('### Cost per operation (single Redis)');
  L.push('');
  t('operation', 'Redis commands (incl. in Lua)', 'round trips', 'Redis CPU (µs)', 'gateway → Redis (B)', 'Redis → gateway (B)');
  t('---', '---', '---', '---', '---', '---');
  const h = p.heartbeats;
  t(`heartbeat, at ${n0(h.achievedPerSecond)}/s`, h.commands, h.roundTrips, `${h.cpuUs} (${h.marginalCpuUs} above idle)`, h.netInBytes, h.netOutBytes);
  const th = p.throughput;
  t(`heartbeat, at ${n0(th.heartbeatsPerSecond)}/s (max throughput)`, th.commands, th.roundTrips, th.cpuUs, th.netInBytes, th.netOutBytes);
  t('connect', p.offline.connect.commands, p.offline.connect.roundTrips, p.offline.connect.cpuUs, p.offline.connect.netInBytes, p.offline.connect.netOutBytes);
  t('disconnect', p.offline.disconnect.commands, p.offline.disconnect.roundTrips, p.offline.disconnect.cpuUs, p.offline.disconnect.netInBytes, p.offline.disconnect.netOutBytes);
  t(`publish (${p.publish.targetsPerPublish} targets, ${p.publish.acksPerPublish} acks)`, p.publish.commands, p.publish.roundTrips, p.publish.cpuUs, p.publish.netInBytes, p.publish.netOutBytes);
  L.push('');
  L.push(`Commands inside one heartbeat: ${Object.entries(h.commandMix).map(([k, v]) => `${k} ${v}`).join(', ')}. Per publish: ${Object.entries(p.publish.commandMix).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  L.push(`Idle with ${n0(S.options.devices)} devices online: Redis at ${p.idle.redisCpuPercent} % of a core.`);
  L.push('');
  if (C) {
    const cp = C.phases;
    L.push(`### Cost per operation (Cluster of ${C.final.perMaster.length}, ${n0(C.options.devices)} devices; all masters together)`);
    L.push('');
    t('operation', 'Redis commands (incl. in Lua)', 'round trips', 'Redis CPU (µs)', 'gateway → Redis (B)', 'Redis → gateway (B)');
    t('---', '---', '---', '---', '---', '---');
    t(`heartbeat, at ${n0(cp.throughput.heartbeatsPerSecond)}/s (max throughput)`, cp.throughput.commands, cp.throughput.roundTrips, cp.throughput.cpuUs, cp.throughput.netInBytes, cp.throughput.netOutBytes);
    t('connect', cp.offline.connect.commands, cp.offline.connect.roundTrips, cp.offline.connect.cpuUs, cp.offline.connect.netInBytes, cp.offline.connect.netOutBytes);
    t('disconnect', cp.offline.disconnect.commands, cp.offline.disconnect.roundTrips, cp.offline.disconnect.cpuUs, cp.offline.disconnect.netInBytes, cp.offline.disconnect.netOutBytes);
    t(`publish (${cp.publish.targetsPerPublish} targets, ${cp.publish.acksPerPublish} acks)`, cp.publish.commands, cp.publish.roundTrips, cp.publish.cpuUs, cp.publish.netInBytes, cp.publish.netOutBytes);
    L.push('');
    L.push('What partitioning adds: a connect or disconnect runs a second script in the user\'s partition (`user.*` are');
    L.push('decided there); a publish to devices in several partitions runs one script per partition; a sweep claims in');
    L.push('every partition (a call each, even when nothing expired there).');
    L.push('');
  }
  L.push('### Sweep time among N online');
  L.push('');
  t('devices online', 'expired', 'sweep (ms)', 'claim calls', 'runs (ms)');
  t('---', '---', '---', '---', '---');
  for (const x of p.sweep.probes) t(n0(x.online), n0(x.expired), x.ms, x.calls, (x.runsMs ?? [x.ms]).join(', '));
  L.push('');
  const base = p.sweep.probes.filter((x) => x.expired === S.options.sweepExpired);
  const big = p.sweep.probes.find((x) => x.expired === S.options.sweepExpired * 10);
  const lastBase = base.at(-1);
  L.push('The sweep costs time in the number expired, not in the number online: the expiry index is a sorted set read');
  L.push(`from its expired end (\`ZRANGEBYSCORE ... LIMIT\`). Measured: ${n0(S.options.sweepExpired)} expired take ${base.map((x) => `${x.ms} ms among ${n0(x.online)}`).join(', ')}`);
  L.push(`(×${n2(lastBase.ms / base[0].ms)} for ×${n0(lastBase.online / base[0].online)} the devices online)${big ? `, and ${n0(big.expired)} take ${big.ms} ms (×${n2(big.ms / lastBase.ms)} for ten times as many)` : ''}.`);
  L.push('');
  L.push(`![Sweep time vs devices online](${rel(charts[0])})`);
  L.push('');
  L.push('### Heartbeat throughput, one master and three');
  L.push('');
  t('Redis', 'heartbeats/s reached', 'hottest master: CPU', 'hottest master: share of commands', 'ceiling: hottest master at 100 % of a core (estimate)');
  t('---', '---', '---', '---', '---');
  t(`single (${n0(S.options.devices)} devices)`, n0(th.heartbeatsPerSecond), `${Math.round(th.hottestMasterCpuShare * 100)} %`, `${Math.round(th.hottestMasterCallShare * 100)} %`, n0(th.ceilingEstimate));
  if (C) {
    const ct = C.phases.throughput;
    t(`Cluster of ${ct.perMaster.length} (${n0(C.options.devices)} devices)`, n0(ct.heartbeatsPerSecond), `${Math.round(ct.hottestMasterCpuShare * 100)} %`, `${Math.round(ct.hottestMasterCallShare * 100)} %`, n0(ct.ceilingEstimate));
  }
  L.push('');
  L.push(`The load processes share this machine's ${m.cpus} cores with Redis, so the rate reached says more about the machine than`);
  L.push('about Redis. The last column is the load-independent figure: the heartbeats/s of the whole deployment once its');
  L.push('hottest master\'s command thread is at 100 % of a core (heartbeats per CPU-second of that master). With the work');
  L.push('spread evenly it is about the masters\' sum.');
  if (C) {
    const ct = C.phases.throughput;
    const gain = 1 / ct.hottestMasterCallShare;
    L.push('');
    L.push(`**1 → ${ct.perMaster.length} masters: ×${n2(gain)}.** A deployment's ceiling is its hottest master's: here that master does`);
    L.push(`${Math.round(ct.hottestMasterCallShare * 100)} % of the work, so the Cluster goes ${n2(gain)} times as far as one master of the same speed (×${ct.perMaster.length} at a perfect spread).`);
    L.push(`The heartbeats/s reached are not ${ct.perMaster.length} times one master's: the ${ct.perMaster.length} masters and the load processes share this machine's ${m.cpus} cores.`);
    L.push('');
    L.push('Keys and commands per master in the Cluster run:');
    L.push('');
    t('master', 'keys', 'share of commands (max throughput)', 'CPU (max throughput)', 'share of commands (mix)', 'CPU (mix)');
    t('---', '---', '---', '---', '---', '---');
    C.final.perMaster.forEach((fm, i) => {
      const a = ct.perMaster[i];
      const b = C.phases.mix.perMaster[i];
      t(fm.name, n0(fm.keys), `${Math.round(a.callShare * 100)} %`, `${a.cpuPercent} %`, `${Math.round(b.callShare * 100)} %`, `${b.cpuPercent} %`);
    });
    L.push('');
    L.push(`![Share of commands per master](${rel(charts[1])})`);
  }
  L.push('');
  L.push('### The mix');
  L.push('');
  const mx = p.mix;
  t('', 'single Redis', ...(C ? ['Cluster'] : []));
  t('---', '---', ...(C ? ['---'] : []));
  const both = (label, f) => t(label, f(S), ...(C ? [f(C)] : []));
  both('devices', (r) => n0(r.options.devices));
  both('heartbeats/s (owed on the stretched schedule)', (r) => `${n0(r.phases.mix.perSecond.heartbeats)} (${n0(r.phases.mix.owedHeartbeatsPerSecond)})`);
  both('connects / disconnects / publishes / acks per s', (r) => [r.phases.mix.perSecond.connects, r.phases.mix.perSecond.disconnects, r.phases.mix.perSecond.publishes, r.phases.mix.perSecond.acks].map(n1).join(' / '));
  both('Redis commands/s', (r) => n0(r.phases.mix.perSecond.commands));
  both('Redis CPU per master', (r) => r.phases.mix.perMaster.map((x) => `${x.cpuPercent} %`).join(' / '));
  both('sweep p50 / max (ms), sessions swept/s', (r) => `${r.phases.mix.sweepMs.p50} / ${r.phases.mix.sweepMs.max}, ${r.phases.mix.perSecond.swept}`);
  both('heartbeat round trip p50 / p99 (ms)', (r) => `${r.phases.mix.heartbeatLatencyMs.p50} / ${r.phases.mix.heartbeatLatencyMs.p99}`);
  both('heartbeats sent late p99 (ms)', (r) => n0(r.phases.mix.heartbeatLateMs.p99));
  both('sessions that ran out while beating', (r) => n0(r.phases.mix.falselyExpired + r.phases.mix.expiredBeats));
  L.push('');
  void mx;

  const failures = [S, C].filter((r) => r && Object.keys(r.counters?.errors ?? {}).length);
  if (failures.length) {
    L.push(`**Store calls failed during ${failures.map((r) => `the ${r.redis.kind} run (${JSON.stringify(r.counters.errors)}; the last: ${r.counters.lastError})`).join(' and ')}.**`);
    L.push('');
  }
  L.push('## Sizing (a model, from the measured costs)');
  L.push('');
  L.push('Assumptions, beyond the measurements above:');
  L.push(`- every device online at the peak, heartbeating at the measured mix's mean learned interval (${n1(S.config.realMeanIntervalMs / 1000)} s);`);
  L.push(`- as many known-but-offline devices again (kept \`DEVICE_RETENTION_DAYS\`); each device reconnects ${A.reconnectsPerDevicePerDay} times a day and gets ${A.notificationsPerDevicePerDay} notifications a day;`);
  L.push(`- event log and notification status kept as configured (\`EVENT_RETENTION_HOURS\` ${S.config.eventRetentionMs / 3_600_000}, \`NOTIFICATION_RETENTION_HOURS\` ${S.config.notificationRetentionMs / 3_600_000});`);
  L.push(`- a Redis master: its command thread planned at ${A.redisCoreUtilization * 100} % of a core, ${A.masterMemoryGiB} GiB usable memory, a ${A.nicGbit} Gbit/s link;`);
  L.push(`- heartbeat CPU per operation as measured at maximum throughput (${th.cpuUs} µs), idle cost proportional to the devices online;`);
  L.push(`- gateways on **this machine**: ${n0(Math.floor(perf.devicesPerProcess * A.thisHost.processShareOfMeasuredMax))} devices per process (90 % of the ${n0(perf.devicesPerProcess)} one process held, at its file-descriptor limit of ${n0(perf.fdLimit)}),`);
  L.push(`  ${+perf.cpuMsPerHeartbeat.toFixed(3)} ms CPU per heartbeat, ${+perf.cpuMsPerConnect.toFixed(3)} ms per connect, ${+perf.cpuMsPerPost.toFixed(3)} ms per publish; hosts of ${A.thisHost.cores} cores at ${A.gatewayCoreUtilization * 100} %;`);
  L.push(`- gateways on **a bigger host** (an assumption, not measured): ${A.bigHost.cores} cores, ${A.bigHost.memoryGiB} GiB, descriptor limit ${n0(A.bigHost.fdLimit)}, one process per core at ${A.gatewayCoreUtilization * 100} %,`);
  L.push(`  ${perf.rssPerConnectionKb} KB of process memory plus ${A.bigHost.kernelBytesPerSocket / 1024} KiB of kernel socket buffers per connection, memory used to 70 %;`);
  L.push(`- device ↔ gateway bytes per heartbeat computed, not measured: ${link.heartbeat} B (the two Socket.IO frames of docs/protocol.md, ${link.beatFrame} + ${link.ackFrame} B, with WebSocket framing, TLS 1.3 records and one TCP/IPv4 segment each way; delayed ACKs not counted).`);
  L.push('');
  t('devices', ...rows.map((r) => size(r.devices)));
  t('---', ...rows.map(() => '---'));
  t('heartbeats/s', ...rows.map((r) => n0(r.hbPerSecond)));
  t('connects + disconnects/s, publishes/s', ...rows.map((r) => `${n0(r.cyclesPerSecond * 2)}, ${n0(r.publishesPerSecond)}`));
  t('Redis CPU (cores of command thread)', ...rows.map((r) => n2(r.cpuCores)));
  t('Redis memory: online / offline known', ...rows.map((r) => `${bytes(r.memory.online)} / ${bytes(r.memory.offlineKnown)}`));
  t('Redis memory: event log / notifications', ...rows.map((r) => `${bytes(r.memory.eventLog)} / ${bytes(r.memory.notifications)}`));
  t('Redis memory, total', ...rows.map((r) => bytes(r.memoryBytes)));
  t('gateway ↔ Redis traffic', ...rows.map((r) => bits(r.redisBitsPerSecond)));
  t('device ↔ gateway heartbeat traffic', ...rows.map((r) => bits(r.deviceBitsPerSecond)));
  t('masters\u2019 worth of work (single-Redis costs)', ...rows.map((r) => n0(r.mastersNeeded)));
  t('one Redis (or Sentinel)', ...rows.map((r) => (r.mastersNeeded <= 1 ? `fits (${r.first.name} at ${n0(r.first.ratio * 100)} % of the plan)` : `**does not fit**: ${r.first.name} at ${n0(r.first.ratio * 100)} % of the plan`)));
  if (clusterRows) t(`Cluster (${A.partitions} partitions, costs of the Cluster run): masters`, ...clusterRows.map((r) => `**${n0(r.partitionedMasters)}**`));
  else t(`Cluster (${A.partitions} partitions, single-Redis costs): masters`, ...rows.map((r) => n0(r.partitionedMasters)));
  t('gateway processes, this machine', ...rows.map((r) => `${n0(r.gateway.processes)} on ${n0(r.gateway.thisHosts)} host${r.gateway.thisHosts > 1 ? 's' : ''}`));
  t('gateway CPU, all processes (cores)', ...rows.map((r) => n1(r.gateway.gwCores)));
  t('bigger host: devices per process, hosts', ...rows.map((r) => `${n0(r.gateway.perBigProcess)} (${r.gateway.bigLimitedBy}), ${n0(r.gateway.bigHosts)}`));
  L.push('');
  L.push(`![Redis masters needed](${rel(charts.at(-1))})`);
  L.push('');
  L.push('### What breaks first');
  L.push('');
  rows.forEach((r, i) => {
    const d = size(r.devices);
    const plan = `CPU ${n0(r.need.cpu * 100)} %, memory ${n0(r.need.memory * 100)} %, network ${n0(r.need.network * 100)} % of the plan for one master`;
    const c = clusterRows?.[i] ?? r;
    const gateways = `Gateways: ${n0(r.gateway.processes)} processes at this machine's descriptor limit, or ${n0(r.gateway.bigHosts)} bigger host${r.gateway.bigHosts > 1 ? 's' : ''}.`;
    if (r.mastersNeeded <= 1) {
      L.push(`- **${d}**: nothing on the Redis side (${plan}). ${gateways}`);
    } else {
      const busiest = Math.ceil(A.partitions / c.partitionedMasters);
      L.push(`- **${d}**: one master's ${r.first.name} runs out (${plan}; ${n2(r.cpuCores)} cores of a master's single command thread). A Cluster of ${n0(c.partitionedMasters)} masters carries it: the busiest holds ${busiest} of the ${A.partitions} partitions, ${n1((busiest / (A.partitions / c.partitionedMasters) - 1) * 100)} % over the mean; the event log (${bytes(c.memory.eventLog)} kept, ${n0(c.eventLogPerSecond)} appends/s) is a stream per partition and spreads with the rest. ${gateways}`);
    }
  });
  L.push('');
  L.push('What stays in one slot at any size (bounded, listed so nobody is surprised): the control keys `{ctl}` (partition');
  L.push('leases: one call per instance per second; instance records; the networks index), the per-API-key rate counter (one');
  L.push('`INCR` per REST request of that key), one popular network\'s interval histogram (at most one sample per device and');
  L.push('hour), a user with very many devices (their device set), and the Socket.IO adapter\'s main channel (topic lookups).');
  L.push('');
  L.push('Memory is dominated by what is kept for a day, not by the devices: the event log (every presence change,');
  L.push('`EVENT_RETENTION_HOURS`) and notification statuses (`NOTIFICATION_RETENTION_HOURS`) grow with the churn and publish');
  L.push('rates assumed above; halving a retention halves its share.');
  L.push('');
  L.push('## Found by the simulation');
  L.push('');
  L.push('- On a Cluster, the disconnect script (client close, kick, drain) declared no keys, so the client sent it to any');
  L.push('  master, and 2 times in 3 it failed there ("Script attempted to access a non local key"): the session then lingered');
  L.push('  until its ttl and was recorded as `heartbeat_timeout`. It now declares a key under the prefix, and the short');
  L.push('  Cluster run in `test/simulate.e2e-spec.ts` requires every store call to succeed.');
  L.push('');
  L.push('## Limits of these figures');
  L.push('');
  L.push('- Redis, the load processes and other work share one 2-core machine: rates reached are lower bounds; per-operation');
  L.push('  CPU comes from Redis\'s own counters and is the figure the model uses.');
  L.push('- Per-operation CPU depends on pipelining: at low rates each command pays more of the network round trip (the');
  L.push('  heartbeat row at the scheduled rate against the maximum-throughput row).');
  L.push('- The online-device figure includes the network-interval samples only of devices that made three stable beats during');
  L.push('  the run (one vote per device, network and hour: "Smart heartbeat" in the README): on the stretched schedule, few.');
  L.push('  A vote is one member of a sorted set and one field of a hash per network, of the order of 100 B more per device');
  L.push('  (estimated from the layout, not measured).');
  L.push('- Memory per device is an average over the fill: `used_memory` jumps by megabytes whenever a hash table doubles (the');
  L.push('  keyspace\'s, or inside a big value such as the one expiry index), so per-device figures use `MEMORY STATS`: the');
  L.push('  dataset\'s growth plus the keyspace tables\' average cost per key.');
  L.push('- The heartbeat round trips in the mix are the simulation process\'s own: one Node process sends everything and its');
  L.push('  event loop, on a shared machine, adds most of that time.');
  L.push('- In the mix, the ttls of devices that die silently are stretched with their intervals and mostly outlast it, so its');
  L.push('  sweeps find little to claim: the sweep probes above are the sweep\'s measurement.');
  L.push('- The API rate limiter (one script per REST request) and the Socket.IO adapter\'s pub/sub are not in these figures.');
  L.push('- The periodic per-partition work of running gateways (event floors and partition ticks once a second, deadline');
  L.push('  claims every 500 ms, lease refreshes) is not driven by the simulation: about 4,000 small scripts/s for the whole');
  L.push('  fleet whatever its size (1024 partitions), a few % of one master, which matters for a small deployment on a Cluster');
  L.push('  and not at all at 10M devices. A single Redis has one partition, so one of each.');
  L.push('- The Cluster\'s masters share this machine\'s 2 cores with each other and with the load: its per-operation CPU comes');
  L.push('  from each master\'s own counters, its rates are lower bounds.');
  L.push('- The sizing is a model: it multiplies measured costs by assumed rates.');
  L.push('');
  return L.join('\n');
}
