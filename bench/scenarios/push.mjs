// push: POST a notification at a fixed rate to one device, then to a user with 3 devices, and measure
// from the moment the POST is written to the moment the device's `notification` handler runs. The
// poster and the devices live in the same load-generator process, so both ends read one clock.
// The POST's own round trip (to the 202) and how late the generator sent against its schedule are
// reported too.
import { delta, disconnectAll, profiled, snapshot } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'push';

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
    ...(p.extraRates ?? []).map((rate) => ({ key: `oneDeviceAt${rate}`, target: { deviceIds: ['push-dev-0'] }, expectedOnline: 1, rate })),
  ];
  const out = { ratePerSecond: p.rate };
  for (const c of cases) {
    const args = { url: server.url, path: server.push.path, headers: server.push.headers, target: c.target, rate: c.rate, expectedOnline: c.expectedOnline };
    await lg.call('push', { ...args, durationMs: p.warmupMs }, p.warmupMs + 30_000);
    const [r, d] = await profiled(h, server, `push-${c.key}`, async () => {
      const a = await snapshot(h, server);
      const res = await lg.call('push', { ...args, durationMs: p.durationMs }, p.durationMs + 30_000);
      return [res, delta(a, await snapshot(h, server))];
    });
    out[c.key] = {
      target: c.target,
      ratePerSecond: c.rate,
      posts: r.issued,
      skippedAtInFlightCap: r.skipped,
      statuses: r.status,
      onlineMismatches: r.onlineMismatch,
      receipts: r.receipts,
      expectedReceipts: r.expectedReceipts,
      latencyMs: summarize(r.latencies),
      postRoundTripMs: summarize(r.rtts),
      generatorLagMs: summarize(r.lags),
      serverCpuPct: round((d.serverCpuMs / d.wallMs) * 100, 1),
      cpuMsPerPost: round(d.serverCpuMs / r.issued, 3),
      redisCommandsPerPost: round(d.redisCommands / r.issued, 2),
    };
    h.log(
      `  ${server.kind}: ${c.key} at ${c.rate}/s: p50 ${out[c.key].latencyMs.p50} ms, p99 ${out[c.key].latencyMs.p99} ms, ` +
        `max ${out[c.key].latencyMs.max} ms; ${r.receipts}/${r.expectedReceipts} received`,
    );
  }
  await disconnectAll(h);
  return out;
}
