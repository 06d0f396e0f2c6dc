// heartbeats: with N devices connected, send heartbeats at fixed total rates and measure server CPU
// per 1k heartbeats, Redis commands and Redis CPU per heartbeat, and ack latency. Redis round trips
// per heartbeat come from a separate MONITOR sample (MONITOR slows Redis, so it is not part of the
// CPU window): commands a client sent versus commands a Lua script ran inside Redis.
// With `durable` (the default), a third server: the baseline with BASELINE_DURABLE=1, whose
// heartbeat does the Redis work the contract asks of one in the simplest way (one script call per
// heartbeat that extends the presence key only while it names the socket's session, and records
// the heartbeat's time in the device's hash, which outlives the key; bench/baseline-server.mjs).
// The heartbeat Redis CPU target is judged against it, the bare baseline's ratio beside.
import { connectDevices, delta, disconnectAll, HEARTBEAT, loadgenStatus, profiled, snapshot, split } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { merge, round, summarize } from '../lib/stats.mjs';

export const name = 'heartbeats';
export const kinds = (p) => (p.durable ? ['gateway', 'baseline', 'durable'] : ['gateway', 'baseline']);

export async function run(h, server, p) {
  const conn = await connectDevices(h, server, { total: p.devices, idPrefix: 'h', concurrency: p.concurrency });
  if (conn.ok < p.devices) throw new Error(`${server.kind}: only ${conn.ok} of ${p.devices} devices connected: ${JSON.stringify(conn.errors)}`);
  h.log(`  ${server.kind}: ${conn.ok} devices connected in ${Math.round(conn.ms)} ms`);
  await sleep(1_000);

  // Round trips first, at a low rate, while nothing is queued anywhere.
  const roundTrips = await sampleRoundTrips(h, server, p);
  h.log(`  ${server.kind}: ${roundTrips.roundTripsPerHeartbeat} Redis round trips per heartbeat (${roundTrips.luaCommandsPerHeartbeat} more inside Lua)`);
  const idle = await measureIdle(h, server, p);
  h.log(`  ${server.kind}: idle with ${conn.ok} devices: ${idle.serverCpuPct}% CPU`);

  const levels = [];
  for (const rate of p.rates) {
    const level = await measureRate(h, server, p, rate);
    levels.push(level);
    h.log(
      `  ${server.kind}: ${rate}/s target, ${level.achievedPerSecond}/s achieved: ${level.cpuMsPer1k} CPU-ms per 1k, ` +
        `${level.serverCpuPct}% CPU, p50 ${level.ackLatencyMs.p50} ms, p99 ${level.ackLatencyMs.p99} ms` +
        (level.errors ? `, ${level.errors} error acks ${JSON.stringify(level.errorCodes)}` : ''),
    );
  }
  const status = await loadgenStatus(h);
  await disconnectAll(h);
  return {
    devices: conn.ok,
    connectMs: round(conn.ms),
    idle,
    levels,
    roundTrips,
    droppedDuringRun: status.dropped,
  };
}

/** CPU with every device connected and silent: the fixed cost under the per-heartbeat one. */
async function measureIdle(h, server, p) {
  const a = await snapshot(h, server);
  await sleep(p.durationMs / 2);
  const d = delta(a, await snapshot(h, server));
  return {
    serverCpuPct: round((d.serverCpuMs / d.wallMs) * 100, 1),
    redisCpuPct: round((d.redisCpuMs / d.wallMs) * 100, 1),
    redisCommandsPerSecond: round(d.redisCommands / (d.wallMs / 1000), 1),
  };
}

export async function measureRate(h, server, p, rate) {
  const shares = split(rate, h.loadgens.length);
  const running = settleLater(
    h.loadgens.map((lg, i) =>
      lg.call(
        'heartbeats',
        { rate: shares[i], warmupMs: p.warmupMs, durationMs: p.durationMs, interval: HEARTBEAT.interval, drainMs: p.drainMs },
        p.warmupMs + p.durationMs + p.drainMs + 60_000,
      ),
    ),
  );
  await sleep(p.warmupMs);
  const [a, b] = await profiled(h, server, `heartbeats-${rate}`, async () => {
    const first = await snapshot(h, server);
    await sleep(p.durationMs);
    return [first, await snapshot(h, server)];
  });
  const results = await running;
  const d = delta(a, b);
  const acked = results.reduce((n, r) => n + r.acked, 0);
  const sent = results.reduce((n, r) => n + r.sent, 0);
  const seconds = d.wallMs / 1000;
  const per1k = (x) => round(x / (acked / 1000), 2);
  return {
    targetPerSecond: rate,
    achievedPerSecond: round(acked / (p.durationMs / 1000), 0),
    sent,
    acked,
    errors: results.reduce((n, r) => n + r.errors, 0),
    errorCodes: results.reduce((all, r) => {
      for (const [code, n] of Object.entries(r.errorCodes ?? {})) all[code] = (all[code] ?? 0) + n;
      return all;
    }, {}),
    unansweredAfterDrain: results.reduce((n, r) => n + r.lost, 0),
    cpuMsPer1k: per1k(d.serverCpuMs),
    serverCpuPct: round((d.serverCpuMs / d.wallMs) * 100, 1),
    redisCommandsPerHeartbeat: round(d.redisCommands / acked, 2),
    redisCpuMsPer1k: per1k(d.redisCpuMs),
    redisCpuPct: round((d.redisCpuMs / d.wallMs) * 100, 1),
    loadgenCpuPct: round((d.loadgenCpuMs / d.wallMs) * 100, 1),
    otherProcessesCpuPct: round((d.othersCpuMs / d.wallMs) * 100, 1),
    windowSeconds: round(seconds, 2),
    redisCommands: d.commands,
    redisReadsPerHeartbeat: round(d.redisReads / acked, 2),
    redisWritesPerHeartbeat: round(d.redisWrites / acked, 2),
    // µs of Redis execution per heartbeat, by command (the rest of Redis CPU is its I/O and event loop).
    redisUsecPerHeartbeat: Object.fromEntries(Object.entries(d.commandUsec).map(([k, v]) => [k, round(v / acked, 2)])),
    ackLatencyMs: summarize(merge(results.map((r) => r.latencies))),
  };
}

async function sampleRoundTrips(h, server, p) {
  const shares = split(p.monitorRate, h.loadgens.length);
  const warmupMs = 500;
  const running = settleLater(
    h.loadgens.map((lg, i) =>
      lg.call('heartbeats', { rate: shares[i], warmupMs, durationMs: p.monitorMs, interval: HEARTBEAT.interval }, p.monitorMs + 60_000),
    ),
  );
  await sleep(warmupMs);
  const mon = await h.redis.monitor(p.monitorMs);
  const results = await running;
  const beats = results.reduce((n, r) => n + r.sent, 0);
  return {
    heartbeats: beats,
    roundTripsPerHeartbeat: round(mon.clientTotal / beats, 2),
    luaCommandsPerHeartbeat: round(mon.luaTotal / beats, 2),
    fromClient: mon.fromClients,
    insideLua: mon.insideLua,
  };
}

/** Promise.all that is already handled, so a failure elsewhere meanwhile is not an unhandled rejection. */
function settleLater(promises) {
  const all = Promise.all(promises);
  all.catch(() => {});
  return all;
}
