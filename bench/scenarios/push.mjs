// push: POST a notification at a fixed rate to one device, then to a user with 3 devices, and measure
// from the moment the POST is written to the moment the device's `notification` handler runs. The
// poster and the devices live in the same load-generator process, so both ends read one clock.
// The POST's own round trip (to the 202) and how late the generator sent against its schedule are
// reported too.
//
// The servers run side by side (`runPaired`, as fan-out does): each holds its own devices, and each
// case is measured in `laps` windows per server, the servers taking turns (gateway, baseline,
// durable, then durable, baseline, gateway, ...), each window after its own `warmupMs` at the rate.
// A case's figures pool its windows (p99 over all of a server's receipts; CPU per POST over all of
// its windows); `windows` keeps each window's p50/p99. Run one server after the other with one
// 10 s window, the push p99 at 1k/s read what the 2 shared cores were doing in that server's 10 s:
// on one run the gateway 24.2 ms against the durable baseline's 8.2, with push-stalls.mjs the
// same build 8-12 ms in steady state against 6-21 for the durable baseline, sitting by sitting.
// Each server first gets `primeMs` of POSTs at `rate` (see below: a fresh process is not in its
// steady state); `durable` is the baseline with the contract's Redis writes.
// The cost curve: one device at each of `extraRates` too (CPU per POST and p99 against the rate).
// Past saturation (`overloadRate`, from `overloadSockets` connections, like many backends at once,
// connections opened before the window, no warm-up, at most one POST in flight on each): how many
// POSTs are shed (503 + Retry-After) and the p99 of the accepted ones, per second of the window, so
// a queue that builds for seconds shows; one server at a time, the others idle.
import { delta, disconnectAll, profiled, snapshot } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'push';
// `durable`: the baseline with the contract's Redis writes (an inbox entry before the 202, a receipt
// per ack, a shared rate limit): what those round trips cost outside the gateway's code. It runs
// the cases at and below saturation, not the overload one.
export const kinds = ['gateway', 'baseline', 'durable'];

/** `servers` in the run's order; returns each server's result by kind. */
export async function runPaired(h, servers, p) {
  const lg = h.loadgens[0];
  // Device and user ids of the same length on each server (`pg-dev-0`, `pb-dev-0`, `pd-dev-0`).
  const sides = [];
  for (const server of servers) {
    const k = server.kind[0];
    const ids = { one: `p${k}-dev-0`, user: `p${k}-user-3` };
    const connect = (idPrefix, count, userId) =>
      lg.call('connect', { url: server.url, kind: server.kind, secret: h.secrets.jwtSecret, idPrefix, count, userId });
    const one = await connect(`p${k}-dev-`, 1, `p${k}-user-1`);
    const three = await connect(`p${k}3-dev-`, 3, ids.user);
    if (one.ok !== 1 || three.ok !== 3) throw new Error(`${server.kind}: push devices did not connect: ${JSON.stringify([one, three])}`);
    sides.push({ server, ids, out: { ratePerSecond: p.rate } });
  }
  await sleep(500);

  const laps = p.laps ?? 1;
  const cases = [
    { key: 'oneDevice', target: (ids) => ({ deviceIds: [ids.one] }), expectedOnline: 1, rate: p.rate, durationMs: p.durationMs },
    { key: 'userWith3Devices', target: (ids) => ({ userIds: [ids.user] }), expectedOnline: 3, rate: p.rate, durationMs: p.durationMs },
    // Lower rates, for context: where the latency stands when the server is not near saturation.
    ...(p.extraRates ?? []).map((rate) => ({ key: `oneDeviceAt${rate}`, target: (ids) => ({ deviceIds: [ids.one] }), expectedOnline: 1, rate, durationMs: p.extraDurationMs })),
  ];
  const pushArgs = (side, c) => ({
    url: side.server.url,
    path: side.server.push.path,
    headers: side.server.push.headers,
    target: c.target(side.ids),
    rate: c.rate,
    expectedOnline: c.expectedOnline,
    ...(c.maxSockets ? { maxSockets: c.maxSockets, maxInFlight: c.maxInFlight, prime: c.prime } : {}),
  });
  const post = (side, c, durationMs) => lg.call('push', { ...pushArgs(side, c), durationMs }, durationMs + 30_000);
  /** One measured window: the load generator's result and the server's counters over it. */
  const window = async (side, c, durationMs) => {
    const a = await snapshot(h, side.server);
    const r = await post(side, c, durationMs);
    return { r, d: delta(a, await snapshot(h, side.server)) };
  };

  // Steady state: a fresh process spends its first seconds under load compiling (V8's compiler
  // and GC threads, the server's and the load generator's, share the 2 cores with the server's main
  // thread and Redis): per-second p99s of a fresh gateway at 1k/s read 3-38 ms for about 8 s, then
  // 1-3 ms. `primeMs` of POSTs at `rate` once per server, before the first case.
  if (p.primeMs > 0) for (const side of sides) await post(side, cases[0], p.primeMs);
  for (const c of cases) {
    const windowMs = Math.max(1, Math.round(c.durationMs / laps));
    const done = new Map(sides.map((side) => [side, []]));
    const measured = async () => {
      for (let lap = 0; lap < laps; lap++) {
        for (const side of lap % 2 === 0 ? sides : [...sides].reverse()) {
          if (p.warmupMs > 0) await post(side, c, p.warmupMs);
          const w = await window(side, c, windowMs);
          done.get(side).push(w);
          const l = summarize(w.r.latencies);
          h.log(`  ${side.server.kind}: ${c.key} at ${c.rate}/s, window ${lap + 1}/${laps}: p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`);
        }
      }
    };
    // With --cpu-prof each server's profile covers the case's windows (its own and, idle, the others').
    await sides.reduceRight((inner, side) => () => profiled(h, side.server, `push-${c.key}`, inner), measured)();
    for (const side of sides) {
      const windows = done.get(side);
      side.out[c.key] = summary(c, c.target(side.ids), pooled(windows.map((w) => w.r)), sumDeltas(windows.map((w) => w.d)), windows);
      logCase(h, side.server, c, side.out[c.key]);
    }
  }

  // Past saturation, one server at a time (not the durable baseline).
  if (p.overloadRate) {
    const c = {
      key: 'overload',
      target: (ids) => ({ deviceIds: [ids.one] }),
      expectedOnline: 1,
      rate: p.overloadRate,
      maxSockets: p.overloadSockets,
      maxInFlight: p.overloadSockets,
      prime: true,
    };
    for (const side of sides.filter((s) => s.server.kind !== 'durable')) {
      const { r, d } = await profiled(h, side.server, 'push-overload', () => window(side, c, p.overloadDurationMs));
      side.out.overload = { ...summary(c, c.target(side.ids), r, d), connections: c.maxSockets, perSecond: perSecond(r, p.overloadDurationMs) };
      logCase(h, side.server, c, side.out.overload);
    }
  }
  await disconnectAll(h);
  return Object.fromEntries(sides.map((side) => [side.server.kind, side.out]));
}

/** A case's figures from the load generator's result and the server's counters (pooled over its windows). */
function summary(c, target, r, d, windows) {
  const sent = r.issued - r.skipped;
  const shed = r.status['503'] ?? 0;
  return {
    target,
    ratePerSecond: c.rate,
    posts: r.issued,
    skippedAtInFlightCap: r.skipped,
    accepted: r.accepted,
    shed,
    shedPct: round((shed / Math.max(sent, 1)) * 100, 1),
    unanswered: r.unanswered,
    statuses: r.status,
    retryAfter: r.retryAfter,
    shedBy: r.shedBy,
    onlineMismatches: r.onlineMismatch,
    receipts: r.receipts,
    expectedReceipts: r.expectedReceipts,
    latencyMs: summarize(r.latencies),
    postRoundTripMs: summarize(r.rtts),
    shedRoundTripMs: summarize(r.shedRtts),
    generatorLagMs: summarize(r.lags),
    serverCpuPct: round((d.serverCpuMs / d.wallMs) * 100, 1),
    cpuMsPerPost: round(d.serverCpuMs / sent, 3),
    redisCommandsPerPost: round(d.redisCommands / sent, 2),
    ...(windows && windows.length > 1
      ? {
          windows: windows.map(({ r: w }) => {
            const l = summarize(w.latencies);
            return { receipts: w.receipts, p50: l.p50, p99: l.p99, max: l.max };
          }),
        }
      : {}),
  };
}

function logCase(h, server, c, o) {
  h.log(
    `  ${server.kind}: ${c.key} at ${c.rate}/s: p50 ${o.latencyMs.p50} ms, p99 ${o.latencyMs.p99} ms, ` +
      `max ${o.latencyMs.max} ms; ${o.receipts}/${o.expectedReceipts} received; ${o.cpuMsPerPost} CPU-ms per POST` +
      `${o.shed || o.skippedAtInFlightCap ? `; ${o.shed} shed (${o.shedPct} %), ${o.skippedAtInFlightCap} not sent (in-flight cap)` : ''}`,
  );
}

/** The load generator's results of several windows as one: samples joined, counts added. */
function pooled(results) {
  if (results.length === 1) return results[0];
  const out = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r)) {
      if (ArrayBuffer.isView(v) || Array.isArray(v)) out[k] = [...(out[k] ?? []), ...v];
      else if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
      else if (v && typeof v === 'object') {
        out[k] ??= {};
        for (const [kk, n] of Object.entries(v)) out[k][kk] = (out[k][kk] ?? 0) + n;
      }
    }
  }
  return out;
}

/** The counters push reads (server CPU, wall time, Redis commands) summed over windows. */
function sumDeltas(deltas) {
  return {
    serverCpuMs: deltas.reduce((n, d) => n + d.serverCpuMs, 0),
    wallMs: deltas.reduce((n, d) => n + d.wallMs, 0),
    redisCommands: deltas.reduce((n, d) => n + d.redisCommands, 0),
  };
}

/** Per second of the window (by send time): POSTs accepted, shed, and the accepted ones' p50/p99. */
function perSecond(r, durationMs) {
  const seconds = Math.ceil(durationMs / 1000);
  const start = r.sentAts.reduce((m, t) => Math.min(m, t), Infinity);
  const buckets = Array.from({ length: seconds }, () => []);
  r.sentAts.forEach((t, i) => buckets[Math.min(seconds - 1, Math.max(0, Math.floor((t - start) / 1000)))].push(r.latencies[i]));
  return buckets.map((b, i) => {
    const s = summarize(b);
    return { second: i + 1, received: b.length, p50: s.p50, p99: s.p99 };
  });
}
