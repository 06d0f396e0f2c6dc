// push: POST a notification at a fixed rate to one device, then to a user with 3 devices, and measure
// from the moment the POST is written to the moment the device's `notification` handler runs. The
// poster and the devices live in the same load-generator process, so both ends read one clock.
// The POST's own round trip (to the 202) and how late the generator sent against its schedule are
// reported too.
//
// Each server first gets `primeMs` of POSTs at `rate` (see below: a fresh process is not in its
// steady state), then each case its own `warmupMs`; `durable` (the baseline with the contract's
// Redis writes) runs after or before the two others, alternating.
// The cost curve: one device at each of `extraRates` too (CPU per POST and p99 against the rate).
// Past saturation (`overloadRate`, from `overloadSockets` connections, like many backends at once,
// connections opened before the window, no warm-up, at most one POST in flight on each): how many POSTs are shed (503 + Retry-After) and the p99 of the accepted ones, per
// second of the window, so a queue that builds for seconds shows.
import { delta, disconnectAll, profiled, snapshot } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'push';
// `durable`: the baseline with the contract's Redis writes (an inbox entry before the 202, a receipt
// per ack, a shared rate limit): what those round trips cost outside the gateway's code. It runs
// the cases at and below saturation, not the overload one.
export const kinds = ['gateway', 'baseline', 'durable'];

export async function run(h, server, p) {
  const lg = h.loadgens[0];
  const connect = (idPrefix, count, userId) =>
    lg.call('connect', { url: server.url, kind: server.kind, secret: h.secrets.jwtSecret, idPrefix, count, userId });
  const one = await connect('push-dev-', 1, 'push-user-1');
  const three = await connect('push3-dev-', 3, 'push-user-3');
  if (one.ok !== 1 || three.ok !== 3) throw new Error(`${server.kind}: push devices did not connect: ${JSON.stringify([one, three])}`);
  await sleep(500);

  const cases = [
    { key: 'oneDevice', target: { deviceIds: ['push-dev-0'] }, expectedOnline: 1, rate: p.rate },
    { key: 'userWith3Devices', target: { userIds: ['push-user-3'] }, expectedOnline: 3, rate: p.rate },
    // Lower rates, for context: where the latency stands when the server is not near saturation.
    ...(p.extraRates ?? []).map((rate) => ({
      key: `oneDeviceAt${rate}`,
      target: { deviceIds: ['push-dev-0'] },
      expectedOnline: 1,
      rate,
      durationMs: p.extraDurationMs,
    })),
    ...(p.overloadRate && server.kind !== 'durable'
      ? [
          {
            key: 'overload',
            target: { deviceIds: ['push-dev-0'] },
            expectedOnline: 1,
            rate: p.overloadRate,
            durationMs: p.overloadDurationMs,
            warmupMs: 0,
            maxSockets: p.overloadSockets,
            maxInFlight: p.overloadSockets,
            prime: true,
          },
        ]
      : []),
  ];
  const out = { ratePerSecond: p.rate };
  // Steady state: a fresh process spends its first seconds under load compiling (V8's compiler
  // and GC threads, the server's and the load generator's, share the 2 cores with the server's main
  // thread and Redis): per-second p99s of a fresh gateway at 1k/s read 3-38 ms for about 8 s, then
  // 1-3 ms. `primeMs` of POSTs at `rate` once per server, before the first case's own warm-up.
  const pushArgs = (c) => ({
    url: server.url,
    path: server.push.path,
    headers: server.push.headers,
    target: c.target,
    rate: c.rate,
    expectedOnline: c.expectedOnline,
    ...(c.maxSockets ? { maxSockets: c.maxSockets, maxInFlight: c.maxInFlight, prime: c.prime } : {}),
  });
  if (p.primeMs > 0) await lg.call('push', { ...pushArgs(cases[0]), durationMs: p.primeMs }, p.primeMs + 30_000);
  for (const c of cases) {
    const args = pushArgs(c);
    const warmupMs = c.warmupMs ?? p.warmupMs;
    const durationMs = c.durationMs ?? p.durationMs;
    if (warmupMs > 0) await lg.call('push', { ...args, durationMs: warmupMs }, warmupMs + 30_000);
    const [r, d] = await profiled(h, server, `push-${c.key}`, async () => {
      const a = await snapshot(h, server);
      const res = await lg.call('push', { ...args, durationMs }, durationMs + 30_000);
      return [res, delta(a, await snapshot(h, server))];
    });
    const sent = r.issued - r.skipped;
    const shed = r.status['503'] ?? 0;
    out[c.key] = {
      target: c.target,
      ratePerSecond: c.rate,
      posts: r.issued,
      skippedAtInFlightCap: r.skipped,
      ...(c.maxSockets ? { connections: c.maxSockets } : {}),
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
      ...(c.key === 'overload' ? { perSecond: perSecond(r, durationMs) } : {}),
      generatorLagMs: summarize(r.lags),
      serverCpuPct: round((d.serverCpuMs / d.wallMs) * 100, 1),
      cpuMsPerPost: round(d.serverCpuMs / sent, 3),
      redisCommandsPerPost: round(d.redisCommands / sent, 2),
    };
    h.log(
      `  ${server.kind}: ${c.key} at ${c.rate}/s: p50 ${out[c.key].latencyMs.p50} ms, p99 ${out[c.key].latencyMs.p99} ms, ` +
        `max ${out[c.key].latencyMs.max} ms; ${r.receipts}/${r.expectedReceipts} received; ${out[c.key].cpuMsPerPost} CPU-ms per POST` +
        `${shed || r.skipped ? `; ${shed} shed (${out[c.key].shedPct} %), ${r.skipped} not sent (in-flight cap)` : ''}`,
    );
  }
  await disconnectAll(h);
  return out;
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
