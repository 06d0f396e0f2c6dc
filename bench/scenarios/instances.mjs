// several instances: 2 gateway processes versus 1 on connections held and heartbeat CPU (same device
// count, same heartbeat rates, same Redis and REDIS_PREFIX). Phase 1: one gateway process
// (INSTANCE_ID bench-gw-1) holds all N devices. Phase 2: a second process (bench-gw-2, its own port)
// is started and the devices reconnect split half and half over the two (every load generator
// holds sockets on both, so heartbeats are spread evenly). For each phase: connections held per
// process (the load generators' connected sockets per server, and the instance counts the gateways
// report in GET /v1/presence), RSS per process, and total server CPU (both processes summed) per
// 1k heartbeats at each rate. The Socket.IO Redis adapter is attached in both phases (REDIS_URL is
// set), so phase 1 pays its pub/sub cost too.
//
// Gateway only: there is no multi-instance baseline (a bare Socket.IO server would need the same
// adapter and its own presence/ownership rules), so the baseline column is "n/a".
import { connectDevices, disconnectAll, loadgenStatus, secrets } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { ratio, round } from '../lib/stats.mjs';
import { measureRate } from './heartbeats.mjs';

export const name = 'instances';
export const gatewayOnly = 'there is no multi-instance baseline';

export async function run(h, start, p) {
  const servers = [];
  try {
    servers.push(await start({ INSTANCE_ID: 'bench-gw-1' }));
    const one = await phase(h, servers, p, 'i1');
    await disconnectAll(h);
    await settled(servers[0]);
    servers.push(await start({ INSTANCE_ID: 'bench-gw-2' }));
    const two = await phase(h, servers, p, 'i2');
    await disconnectAll(h);
    const comparison = one.levels.map((l, i) => ({
      targetPerSecond: l.targetPerSecond,
      cpuMsPer1kOne: l.cpuMsPer1k,
      cpuMsPer1kTwo: two.levels[i]?.cpuMsPer1k,
      ratio: ratio(two.levels[i]?.cpuMsPer1k, l.cpuMsPer1k),
    }));
    return { devices: p.devices, one, two, comparison };
  } finally {
    for (const s of servers) await s.stop();
  }
}

async function phase(h, servers, p, idPrefix) {
  const n = servers.length;
  const share = Math.floor(p.devices / n);
  let ok = 0;
  let ms = 0;
  for (const [i, server] of servers.entries()) {
    const count = i === n - 1 ? p.devices - share * (n - 1) : share;
    const conn = await connectDevices(h, server, { total: count, idPrefix: `${idPrefix}s${i}-`, concurrency: p.concurrency });
    if (conn.ok < count) {
      throw new Error(`${server.kind} ${i + 1}/${n}: only ${conn.ok} of ${count} devices connected: ${JSON.stringify(conn.errors)}; its output ends:\n${server.child.output().slice(-2_000)}`);
    }
    ok += conn.ok;
    ms += conn.ms;
  }
  h.log(`  ${n} process(es): ${ok} devices connected in ${Math.round(ms)} ms`);
  await sleep(1_000);

  // measureRate snapshots one "server": this one sums the CPU of every gateway process.
  const all = { kind: `gateway x${n}`, cpuMs: () => servers.reduce((t, s) => t + s.cpuMs(), 0) };
  const levels = [];
  for (const rate of p.rates) {
    const level = await measureRate({ ...h, cpuProfiles: false }, all, p, rate);
    levels.push(level);
    h.log(`  ${n} process(es): ${rate}/s target, ${level.achievedPerSecond}/s achieved: ${level.cpuMsPer1k} CPU-ms per 1k (all processes), ${level.serverCpuPct}% CPU, p99 ${level.ackLatencyMs.p99} ms`);
  }

  const status = await loadgenStatus(h);
  const byUrl = {};
  const all_ = await Promise.all(h.loadgens.map((lg) => lg.call('status')));
  for (const s of all_) for (const [u, c] of Object.entries(s.byUrl ?? {})) byUrl[u] = (byUrl[u] ?? 0) + c;
  // Instances report their socket counts every 5 s (SWEEP_INTERVAL_MS in the bench): wait (bounded)
  // until the reports cover every held connection.
  let reported = await presence(servers[0]);
  for (const until = Date.now() + 6_000; Date.now() < until; ) {
    const sum = (reported?.instances ?? []).filter((x) => x.instanceId.startsWith('bench-gw-')).reduce((t, x) => t + x.online, 0);
    if (sum >= status.connected) break;
    await sleep(500);
    reported = await presence(servers[0]);
  }
  const processes = [];
  for (const [i, s] of servers.entries()) {
    processes.push({
      instanceId: `bench-gw-${i + 1}`,
      connectionsHeld: byUrl[s.url] ?? 0,
      reportedOnline: reported?.instances?.find((x) => x.instanceId === `bench-gw-${i + 1}`)?.online ?? null,
      rssMb: round(s.rssKb() / 1024, 1),
    });
  }
  h.log(`  ${n} process(es): held ${processes.map((x) => `${x.instanceId} ${x.connectionsHeld} (reports ${x.reportedOnline})`).join(', ')}`);
  return {
    processes: n,
    connectionsHeld: processes.reduce((t, x) => t + x.connectionsHeld, 0),
    presenceOnline: reported?.online ?? null,
    perProcess: processes,
    rssMbTotal: round(processes.reduce((t, x) => t + x.rssMb, 0), 1),
    levels,
    droppedDuringRun: status.dropped,
  };
}

/**
 * Waits (bounded) until the instance has ended the sessions of the devices just disconnected:
 * 10k session ends in a burst keep Redis busy for a few seconds on a slow machine, and a handshake
 * whose presence write waits behind them past the command timeout is refused (the client would
 * retry). The scenario compares steady states, not a reconnect storm.
 */
async function settled(server) {
  for (const until = Date.now() + 60_000; Date.now() < until; await sleep(500)) {
    if ((await presence(server))?.online === 0) return;
  }
}

async function presence(server) {
  try {
    const res = await fetch(`${server.url}/v1/presence`, { headers: { authorization: `Bearer ${secrets.apiKey}` } });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}
