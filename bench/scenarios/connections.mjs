// connections: RSS per connection at growing device counts, time and server CPU to connect, and
// (full mode) how many devices one process holds before the per-process file-descriptor limit
// stops it.
//
// The servers run side by side (`runPaired`), each with its own devices, and connect in chunks of
// `chunk` taking turns (gateway, baseline, baseline, gateway, ...), so what the machine does
// meanwhile falls on both alike; CPU per connection pools each server's chunks. Run one after the
// other, the same build's connect ratio read 0.87-1.65x over the full runs of 2026-12-01..03, and
// a loop of alternating 2,000-handshake laps saw one server's CPU per handshake move 0.64-0.95 ms
// from one lap to the next. Memory is each process's own, measured after every level.
import { join } from 'node:path';
import { connectDevices, disconnectAll, disconnectFrom, loadgenStatus, profiled, ROOT } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round } from '../lib/stats.mjs';

export const name = 'connections';

/** `servers` in the run's order; returns each server's result by kind. */
export async function runPaired(h, servers, p) {
  if (!(Number.isInteger(p.chunk) && p.chunk >= 1)) throw new Error(`connections.chunk must be a whole number of devices, at least 1 (got ${p.chunk})`);
  // Device ids of the same length on each server (`cg0-12`, `cb0-12`), each held once.
  const sides = servers.map((server) => ({
    server,
    prefix: `c${server.kind[0]}`,
    offsets: h.loadgens.map(() => 0),
    attempted: 0,
    connected: 0,
    ms: 0,
    cpuMs: 0,
    errors: {},
    points: [],
    chunks: [],
  }));
  await sleep(p.settleMs);
  for (const side of sides) {
    side.idle = await side.server.memory();
    await heapSnapshot(h, side.server, 'idle');
  }
  let turn = 0;
  for (const level of p.levels) {
    const grow = async () => {
      while (sides.some((side) => side.attempted < level)) {
        const order = turn++ % 2 === 0 ? sides : [...sides].reverse();
        for (const side of order) if (side.attempted < level) await connectChunk(h, side, Math.min(p.chunk, level - side.attempted), p);
      }
    };
    // With --cpu-prof, each server's profile covers the last level's chunks (its own and, idle, the other's).
    if (level === p.levels.at(-1)) await sides.reduceRight((inner, side) => () => profiled(h, side.server, `connect-${level}`, inner), grow)();
    else await grow();
    await sleep(p.settleMs);
    for (const side of sides) {
      side.points.push(memoryPoint(side.connected, side.idle, await side.server.memory()));
      if (level === p.levels[0]) await heapSnapshot(h, side.server, String(side.connected));
      const pt = side.points.at(-1);
      h.log(`  ${side.server.kind}: ${side.connected} devices (${Math.round(side.ms)} ms, ${round(side.cpuMs / side.connected, 3)} ms CPU per connection so far), RSS ${pt.rssMb} MB (${pt.perConnKb} KB/conn, heap ${pt.heapPerConnKb} KB/conn)`);
    }
  }
  const lastLevel = p.levels.at(-1);
  const results = sides.map((side) => {
    const result = {
      idle: { rssMb: round(side.idle.rssKb / 1024, 1), heapUsedMb: round(side.idle.heapUsedKb / 1024, 1) },
      points: side.points,
      connectTime: {
        devices: side.connected,
        ms: round(side.ms),
        perSecond: round((side.connected / side.ms) * 1000, 0),
        serverCpuMsPerConnection: round(side.cpuMs / side.connected, 3),
        concurrency: p.concurrency * h.loadgens.length,
        how: `side by side with the other server, in chunks of ${p.chunk} taking turns`,
        chunks: side.chunks,
      },
      failedConnects: side.errors,
    };
    if (side.connected < lastLevel) result.note = `only ${side.connected} of ${lastLevel} devices connected`;
    return result;
  });

  if (p.maxProbe) {
    // One server at a time, from the devices it holds: the first probed with the other's 10k
    // still connected (idle), the second after the first's were closed (the load generators
    // would otherwise hold some 40k sockets).
    for (const [i, side] of sides.entries()) {
      try {
        results[i].max = await probeMax(h, side.server, p, side.connected, side.idle, side.offsets, side.prefix);
      } catch (err) {
        results[i].max = { error: err.message, serverAlive: side.server.alive(), serverOutput: side.server.child.output().slice(-1_000) };
        h.log(`  ${side.server.kind}: max probe failed: ${err.message}`);
      }
      await disconnectFrom(h, side.server);
    }
  }
  await disconnectAll(h);
  return Object.fromEntries(sides.map((side, i) => [side.server.kind, results[i]]));
}

/** Connects `count` more devices to one side's server and adds their time and the server's CPU to its totals. */
async function connectChunk(h, side, count, p) {
  const cpu0 = side.server.cpuMs();
  const res = await connectDevices(h, side.server, { total: count, idPrefix: side.prefix, offsets: side.offsets, concurrency: p.concurrency });
  const cpuMs = side.server.cpuMs() - cpu0;
  side.attempted += count;
  side.connected += res.ok;
  side.ms += res.ms;
  side.cpuMs += cpuMs;
  side.chunks.push({ devices: res.ok, cpuMsPerConnection: round(cpuMs / Math.max(1, res.ok), 3) });
  for (const [k, v] of Object.entries(res.errors)) side.errors[k] = (side.errors[k] ?? 0) + v;
}

/** Keeps connecting past the file-descriptor limit and reports where and why the process stopped. */
async function probeMax(h, server, p, connected, idle, offsets, idPrefix) {
  const attempt = p.maxProbe - connected;
  const limit = server.fdLimit();
  // Drops are counted per load generator, not per server: this probe's are the difference.
  const droppedBefore = (await loadgenStatus(h)).dropped;
  h.log(`  ${server.kind}: probing the maximum, ${attempt} more connections (fd limit ${limit?.soft})`);
  const res = await connectDevices(h, server, {
    total: attempt,
    idPrefix,
    offsets,
    concurrency: p.concurrency,
    timeoutMs: 10_000,
  });
  await sleep(p.settleMs);
  const alive = server.alive();
  const status = await loadgenStatus(h);
  const fds = alive ? server.openFds() : NaN;
  const mem = alive ? await server.memory() : { rssKb: NaN, heapUsedKb: NaN };
  const held = status.byUrl[server.url] ?? 0;
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
    droppedAfterReady: Object.fromEntries(Object.entries(status.dropped).map(([k, v]) => [k, v - (droppedBefore[k] ?? 0)]).filter(([, v]) => v > 0)),
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
