// connections: RSS per connection at growing device counts, time to connect, and (full mode) how
// many devices one process holds before the per-process file-descriptor limit stops it.
import { join } from 'node:path';
import { connectDevices, disconnectAll, loadgenStatus, profiled, ROOT } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round } from '../lib/stats.mjs';

export const name = 'connections';

export async function run(h, server, p) {
  const offsets = h.loadgens.map(() => 0);
  await sleep(p.settleMs);
  const idle = await server.memory();
  await heapSnapshot(h, server, 'idle');
  const points = [];
  let connected = 0;
  let connectMs = 0;
  let connectCpuMs = 0;
  const errors = {};
  for (const level of p.levels) {
    const cpu0 = server.cpuMs();
    const connect = () => connectDevices(h, server, { total: level - connected, idPrefix: 'c', offsets, concurrency: p.concurrency });
    const res = level === p.levels.at(-1) ? await profiled(h, server, `connect-${level}`, connect) : await connect();
    connectCpuMs += server.cpuMs() - cpu0;
    connectMs += res.ms;
    connected += res.ok;
    for (const [k, v] of Object.entries(res.errors)) errors[k] = (errors[k] ?? 0) + v;
    await sleep(p.settleMs);
    points.push(memoryPoint(connected, idle, await server.memory()));
    if (level === p.levels[0]) await heapSnapshot(h, server, String(connected));
    h.log(`  ${server.kind}: ${connected} devices (+${res.ok} in ${Math.round(res.ms)} ms), RSS ${points.at(-1).rssMb} MB (${points.at(-1).perConnKb} KB/conn, heap ${points.at(-1).heapPerConnKb} KB/conn)`);
  }
  const lastLevel = p.levels.at(-1);
  const result = {
    idle: { rssMb: round(idle.rssKb / 1024, 1), heapUsedMb: round(idle.heapUsedKb / 1024, 1) },
    points,
    connectTime: {
      devices: connected,
      ms: round(connectMs),
      perSecond: round((connected / connectMs) * 1000, 0),
      serverCpuMsPerConnection: round(connectCpuMs / connected, 3),
      concurrency: p.concurrency * h.loadgens.length,
    },
    failedConnects: errors,
  };
  if (connected < lastLevel) result.note = `only ${connected} of ${lastLevel} devices connected`;

  if (p.maxProbe) {
    try {
      result.max = await probeMax(h, server, p, connected, idle, offsets);
    } catch (err) {
      result.max = { error: err.message, serverAlive: server.alive(), serverOutput: server.child.output().slice(-1_000) };
      h.log(`  ${server.kind}: max probe failed: ${err.message}`);
    }
  }
  await disconnectAll(h);
  return result;
}

/** Keeps connecting past the file-descriptor limit and reports where and why the process stopped. */
async function probeMax(h, server, p, connected, idle, offsets) {
  const attempt = p.maxProbe - connected;
  const limit = server.fdLimit();
  h.log(`  ${server.kind}: probing the maximum, ${attempt} more connections (fd limit ${limit?.soft})`);
  const res = await connectDevices(h, server, {
    total: attempt,
    idPrefix: 'c',
    offsets,
    concurrency: p.concurrency,
    timeoutMs: 10_000,
  });
  await sleep(p.settleMs);
  const alive = server.alive();
  const status = await loadgenStatus(h);
  const fds = alive ? server.openFds() : NaN;
  const mem = alive ? await server.memory() : { rssKb: NaN, heapUsedKb: NaN };
  const held = status.connected;
  let stoppedBecause;
  if (!alive) stoppedBecause = `the server process exited: ${server.child.output().slice(-500)}`;
  else if (limit && fds >= limit.soft - 2) {
    stoppedBecause =
      `per-process file-descriptor limit: ${fds} of ${limit.soft} descriptors open (one per socket, plus ` +
      `${fds - held} for Redis, the listener, epoll, stdio...); further handshakes were closed at accept (EMFILE)`;
  } else if (res.failed === 0) stoppedBecause = `did not stop: all ${p.maxProbe} attempts connected`;
  else stoppedBecause = `connections failed before the descriptor limit (${fds} of ${limit?.soft} open)`;
  h.log(`  ${server.kind}: holds ${held} devices; ${stoppedBecause}`);
  return {
    attempted: p.maxProbe,
    held,
    serverAlive: alive,
    openFds: fds,
    fdLimit: limit?.soft,
    stoppedBecause,
    failures: res.errors,
    droppedAfterReady: status.dropped,
    ...memoryPoint(held, idle, mem),
  };
}

function memoryPoint(devices, idle, m) {
  return {
    devices,
    rssMb: round(m.rssKb / 1024, 1),
    heapUsedMb: round(m.heapUsedKb / 1024, 1),
    perConnKb: round((m.rssKb - idle.rssKb) / devices, 2),
    heapPerConnKb: round((m.heapUsedKb - idle.heapUsedKb) / devices, 2),
  };
}

/** With --heap-snapshots, a V8 heap snapshot of the server (compare two with bench/heap-summary.mjs). */
async function heapSnapshot(h, server, label) {
  if (!h.heapSnapshots) return;
  const path = join(h.profileDir, `${h.date}-connections-${server.kind}-${label}.heapsnapshot`);
  await server.probe(`heap-snapshot ${path}`, 120_000);
  h.log(`  heap snapshot: ${path.replace(`${ROOT}/`, '')}`);
}
