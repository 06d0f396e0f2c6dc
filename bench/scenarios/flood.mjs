// flood: one socket floods unpaced (unknown events, malformed payloads, acks nobody asked for) while
// N other devices heartbeat at a steady rate. Reported for the other devices: heartbeat ack p50/p99/
// max and error acks, first without the flood (control) and then during it, and how many of them were
// disconnected; /health/ready latency sampled from the bench process; the server's own event-loop
// delay (probe) and CPU, and the CPU of every other process on the machine (a 2-core machine shared
// with the flooder: what the flooder costs the machine is not the server's doing); and for the
// flooder: frames sent, connections, sessions the server ended and why. The flooder has a load
// generator of its own (the last one), so its sending does not slow the heartbeat senders, and it
// reconnects at once whenever it is ended, as a hostile client would.
//
// The gateway runs with the default SOCKET_EVENTS_PER_SECOND (10), not the bench's 1000. The
// baseline has no event budget at all: its figures show what the flood costs a server without one
// (it answers the malformed heartbeats with a Redis SET each and never ends the flooder).
import { connectDevices, delta, disconnectAll, HEARTBEAT, loadgenStatus, secrets, snapshot, split } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { merge, round, summarize } from '../lib/stats.mjs';

export const name = 'flood';
export const serverEnv = { gateway: { SOCKET_EVENTS_PER_SECOND: '10' } };

const FRAMES = ['42["flood",{"n":1}]', '42["heartbeat",{"interval":"soon"}]', '421["flood",{}]', '4399999[]'];

export async function run(h, server, p) {
  if (h.loadgens.length < 2) throw new Error('the flood scenario needs at least 2 load generators');
  const senders = h.loadgens.slice(0, -1);
  const flooder = h.loadgens.at(-1);
  const hs = { ...h, loadgens: senders };
  const conn = await connectDevices(hs, server, { total: p.devices, idPrefix: 'fl', concurrency: p.concurrency });
  if (conn.ok < p.devices) throw new Error(`${server.kind}: only ${conn.ok} of ${p.devices} devices connected: ${JSON.stringify(conn.errors)}`);
  h.log(`  ${server.kind}: ${conn.ok} devices connected`);
  await sleep(500);

  // Warm-up (code compiled, pools grown), then the control window without the flood.
  await Promise.all(senders.map((lg, i) => lg.call('heartbeats', { rate: split(p.rate, senders.length)[i], warmupMs: 0, durationMs: p.warmupMs, interval: HEARTBEAT.interval }, p.warmupMs + 60_000)));
  const control = await phase(h, hs, server, p, p.controlMs, null);
  h.log(`  ${server.kind}: without flood: heartbeat ack p50 ${control.ackLatencyMs.p50} ms, p99 ${control.ackLatencyMs.p99} ms; /health/ready max ${control.health.max} ms`);
  const flood = await phase(h, hs, server, p, p.floodMs, flooder);
  const f = flood.flooder;
  h.log(
    `  ${server.kind}: during flood: heartbeat ack p50 ${flood.ackLatencyMs.p50} ms, p99 ${flood.ackLatencyMs.p99} ms, ` +
      `max ${flood.ackLatencyMs.max} ms; ${flood.errors} error acks, ${flood.unanswered} unanswered, ${flood.othersDisconnected} others disconnected; ` +
      `/health/ready max ${flood.health.max} ms; server event-loop delay p99 ${flood.serverLoopDelayMs.p99} ms, max ${flood.serverLoopDelayMs.max} ms; ` +
      `other processes ${flood.otherProcessesCpuPct}% CPU; flooder sent ${f.sentPerSecond}/s over ${f.connections} connection(s), ended: ${JSON.stringify(f.ended)}`,
  );
  await disconnectAll(h);
  return { devices: conn.ok, heartbeatsPerSecond: p.rate, socketEventsPerSecond: server.kind === 'gateway' ? 10 : null, control, flood };
}

/** `hs`: the bench with the heartbeat senders only; `h`: with every load generator (for CPU figures). */
async function phase(h, hs, server, p, durationMs, flooder) {
  const before = await loadgenStatus(hs);
  const shares = split(p.rate, hs.loadgens.length);
  await server.probe('loop-delay-start');
  const a = await snapshot(h, server);
  const beating = Promise.all(
    hs.loadgens.map((lg, i) =>
      lg.call('heartbeats', { rate: shares[i], warmupMs: 0, durationMs, interval: HEARTBEAT.interval, drainMs: 10_000 }, durationMs + 60_000),
    ),
  );
  beating.catch(() => {});
  const flooding = flooder?.call(
    'flood',
    { url: server.url, kind: server.kind, secret: secrets.jwtSecret, deviceId: 'flooder', userId: 'flood-user', frames: FRAMES, durationMs },
    durationMs + 60_000,
  );
  flooding?.catch(() => {});
  const health = await sampleHealth(server, durationMs, p.healthEveryMs);
  const results = await beating;
  const flood = flooding ? await flooding : null;
  const d = delta(a, await snapshot(h, server));
  const loopDelay = await server.probe('loop-delay-stop');
  const after = await loadgenStatus(hs);
  const droppedNow = Object.values(after.dropped).reduce((n, x) => n + x, 0) - Object.values(before.dropped).reduce((n, x) => n + x, 0);
  return {
    durationMs,
    sent: results.reduce((n, r) => n + r.sent, 0),
    acked: results.reduce((n, r) => n + r.acked, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    unanswered: results.reduce((n, r) => n + r.lost, 0),
    ackLatencyMs: summarize(merge(results.map((r) => r.latencies))),
    othersDisconnected: droppedNow,
    stillConnected: after.connected,
    health,
    serverLoopDelayMs: { p50: loopDelay.p50, p99: loopDelay.p99, max: loopDelay.max },
    serverCpuPct: round((d.serverCpuMs / d.wallMs) * 100, 1),
    loadgenCpuPct: round((d.loadgenCpuMs / d.wallMs) * 100, 1),
    otherProcessesCpuPct: round((d.othersCpuMs / d.wallMs) * 100, 1),
    flooder: flood && { ...flood, sentPerSecond: round(flood.sent / (durationMs / 1000), 0) },
  };
}

/** GET /health/ready every `everyMs` for `durationMs`, each bounded to 10 s: latencies and non-200 answers. */
async function sampleHealth(server, durationMs, everyMs) {
  const latencies = [];
  let notOk = 0;
  const until = performance.now() + durationMs;
  const pending = [];
  while (performance.now() < until) {
    const t = performance.now();
    pending.push(
      fetch(`${server.url}/health/ready`, { signal: AbortSignal.timeout(10_000) }).then(
        async (res) => {
          await res.arrayBuffer();
          latencies.push(performance.now() - t);
          if (res.status !== 200) notOk++;
        },
        () => {
          latencies.push(performance.now() - t);
          notOk++;
        },
      ),
    );
    await sleep(everyMs);
  }
  await Promise.all(pending);
  const s = summarize(latencies);
  return { samples: s.n, p50: s.p50, p99: s.p99, max: s.max, notOk };
}
