// overload: heartbeats at twice the rate one gateway process sustains, for a while, with every
// device still beating within its announced interval (so every device is live): does any of them
// expire? Under saturation a heartbeat waits in the process (event-loop delay) and in Redis's
// queue; the gateway must give its own delay as grace instead of declaring live devices offline,
// and shed REST (503) rather than let heartbeats suffer.
//
// Steps: connect N devices, which then announce a short interval in every heartbeat (TTL = 2.5 x
// interval, swept every 500 ms);
// measure the sustained rate C (heartbeats acked per second while sending well above it); send at
// 2C for the overload window; read the gateway's counters before and after: sessions the sweeper
// expired, heartbeats refused as expired, disconnects seen by the load generators, and presence
// still online. Gateway only: the baseline server has no presence grace to test.
import { connectDevices, disconnectAll, loadgenStatus } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { saturated } from '../lib/report.mjs';
import { round } from '../lib/stats.mjs';
import { measureRate } from './heartbeats.mjs';

export const name = 'overload';
export const gatewayOnly = 'the baseline server has no presence grace to test';

/** What devices announce: short, so that a few seconds of lateness would expire them. */
const INTERVAL_MS = 2_000;

export async function run(h, start, p) {
  // Devices connect with the bench's long default interval (connecting thousands takes longer than
  // a short TTL) and switch to INTERVAL_MS with their first heartbeat.
  const server = await start({ HEARTBEAT_MIN_MS: '1000', SWEEP_INTERVAL_MS: '500' });
  try {
    const conn = await connectDevices(h, server, { total: p.devices, idPrefix: 'ov', concurrency: p.concurrency });
    if (conn.ok < p.devices) throw new Error(`only ${conn.ok} of ${p.devices} devices connected: ${JSON.stringify(conn.errors)}`);
    h.log(`  gateway: ${conn.ok} devices connected in ${Math.round(conn.ms)} ms; they announce ${INTERVAL_MS} ms (TTL ${INTERVAL_MS * 2.5} ms) in every heartbeat`);
    const beat = { warmupMs: p.warmupMs, drainMs: p.drainMs, interval: INTERVAL_MS };

    // Every device must beat at least once per interval from now on, or it would expire rightly.
    const keepAlive = Math.ceil((p.devices / INTERVAL_MS) * 1000 * 1.25);
    // The rate one process sustains: ramp up until acks fall behind, fail or go missing. A machine
    // that is saturated already at the first level (a slow or busy one) steps down towards the
    // keep-alive rate instead; saturated even there, the gateway cannot hold these devices at all.
    let sustained = 0;
    const ramp = [];
    const step = async (rate) => {
      const level = await measureRate(h, server, { ...beat, durationMs: p.rampMs }, rate);
      ramp.push({ targetPerSecond: rate, achievedPerSecond: level.achievedPerSecond, errors: level.errors, p99: level.ackLatencyMs.p99 });
      return !saturated(level) && level.achievedPerSecond;
    };
    const first = Math.max(p.rampFrom, keepAlive);
    for (let rate = first; rate <= p.rampMax; rate = Math.round(rate * 1.5)) {
      const achieved = await step(rate);
      if (!achieved) break;
      sustained = achieved;
    }
    for (let rate = first; !sustained && rate > keepAlive; ) {
      rate = Math.max(keepAlive, Math.round(rate / 1.5));
      sustained = (await step(rate)) || 0;
    }
    if (!sustained) throw new Error(`saturated already at ${ramp.at(-1)?.targetPerSecond}/s, the rate that keeps every device alive: ${JSON.stringify(ramp)}`);
    const rate = Math.max(2 * sustained, keepAlive);
    const perDeviceMs = round((p.devices / rate) * 1000, 0);
    h.log(`  gateway: sustains ${sustained}/s (ramp ${ramp.map((r) => `${r.targetPerSecond}->${r.achievedPerSecond}`).join(', ')}); overload at ${rate}/s, each device every ${perDeviceMs} ms`);

    const before = await counters(server);
    const overload = await measureRate(h, server, { ...beat, durationMs: p.durationMs }, rate);
    const after = await counters(server);
    const status = await loadgenStatus(h);
    const online = await presenceOnline(server);
    await disconnectAll(h);
    const result = {
      devices: p.devices,
      intervalMs: INTERVAL_MS,
      sustainedPerSecond: sustained,
      ramp,
      overloadPerSecond: rate,
      overloadSeconds: p.durationMs / 1000,
      everyDeviceBeatWithinInterval: perDeviceMs <= INTERVAL_MS,
      sentPerSecond: round(overload.sent / (p.durationMs / 1000), 0),
      ackedPerSecond: overload.achievedPerSecond,
      unavailableAcks: overload.errors,
      unansweredAfterDrain: overload.unansweredAfterDrain,
      ackLatencyMs: overload.ackLatencyMs,
      serverCpuPct: overload.serverCpuPct,
      expiredBySweep: after.swept - before.swept,
      refusedAsExpired: after.refused - before.refused,
      restShed: after.shed - before.shed,
      slowConsumersEnded: after.slow - before.slow,
      socketsFull: after.full - before.full,
      disconnected: Object.values(status.dropped ?? {}).reduce((n, v) => n + v, 0),
      disconnectReasons: status.dropped,
      onlineAfter: online,
    };
    h.log(
      `  gateway: ${result.expiredBySweep} expired by the sweep, ${result.refusedAsExpired} heartbeats refused as expired, ` +
        `${result.disconnected} disconnected, ${online}/${p.devices} online; acks p50 ${overload.ackLatencyMs.p50} ms, p99 ${overload.ackLatencyMs.p99} ms`,
    );
    return result;
  } finally {
    await server.stop();
  }
}

async function counters(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (series) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    swept: read('push_gateway_presence_expired_total'),
    refused: read('push_gateway_heartbeats_total{result="expired"}'),
    shed: read('push_gateway_rest_shed_total'),
    slow: read('push_gateway_slow_consumers_total'),
    full: read('push_gateway_socket_full_total'),
  };
}

async function presenceOnline(server) {
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${server.url}/v1/presence`, { headers: server.push.headers });
    if (res.ok) return (await res.json()).online;
    await sleep(250); // shed (503) while it catches up
  }
  return undefined;
}
