// webhooks: events for backends delivered to a local HTTP receiver by one gateway process.
// Events are real state changes: a POST /v1/notifications with ttl 0 to offline devices records one
// `notification.expired` per device, in the publish's own Lua script, exactly as in production.
// Throughput: `backlog` events (1000 devices x rounds) are recorded as fast as the POSTs go, then the
// receiver counts how fast they arrive (first to last accepted; the gateway keeps one event per
// device in flight, up to 64 devices at once). Latency: events recorded at a modest steady rate,
// from the event's `timestamp` (the clock of the script that made the change) to the receiver
// reading the request; both ends are on this machine. The receiver answers 204 and verifies the
// Standard Webhooks signature of every 50th request (all of them would put the receiver's HMAC on
// the same 2 cores as the gateway).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { epoch, ROOT } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'webhooks';
export const gatewayOnly = 'the baseline has no events for backends';
const require = createRequire(import.meta.url);
const TARGETS_PER_POST = 1_000;

export async function run(h, start, p) {
  const { Webhook } = require(join(ROOT, 'node_modules/standardwebhooks'));
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const verifier = new Webhook(secret);
  const received = [];
  let requests = 0;
  let badSignatures = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = epoch();
      const body = Buffer.concat(chunks).toString('utf8');
      if (requests++ % 50 === 0) {
        try {
          verifier.verify(body, req.headers);
        } catch {
          badSignatures++;
        }
      }
      const event = JSON.parse(body);
      received.push({ id: event.id, deviceId: event.data.deviceId, timestamp: event.timestamp, at });
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiverUrl = `http://127.0.0.1:${server.address().port}/hooks`;
  const gw = await start({ WEBHOOK_URL: receiverUrl, WEBHOOK_SECRET: secret, INSTANCE_ID: 'bench-webhooks' });
  const post = async (deviceIds) => {
    const res = await fetch(`${gw.url}${gw.push.path}`, {
      method: 'POST',
      headers: { ...gw.push.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceIds, data: { bench: true }, ttl: 0 }),
    });
    if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
  };
  const waitFor = async (count, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (received.length < count && Date.now() < deadline) await sleep(20);
    if (received.length < count) throw new Error(`receiver got ${received.length} of ${count} events within ${timeoutMs} ms`);
  };
  try {
    // Warm-up: connections, scripts, JIT.
    await post(Array.from({ length: 200 }, (_, i) => `wh-warm-${i}`));
    await waitFor(200, 30_000);
    received.length = 0;

    // Throughput: record the whole backlog, then watch it drain.
    const devices = Array.from({ length: TARGETS_PER_POST }, (_, i) => `wh-bench-${i}`);
    const rounds = Math.ceil(p.backlog / TARGETS_PER_POST);
    const cpu0 = gw.cpuMs();
    const t0 = epoch();
    for (let r = 0; r < rounds; r++) await post(devices);
    const recordedMs = epoch() - t0;
    await waitFor(rounds * TARGETS_PER_POST, p.drainTimeoutMs);
    const cpuMs = gw.cpuMs() - cpu0;
    const first = received[0].at;
    const last = received[received.length - 1].at;
    const spanMs = last - t0;
    const perDevice = new Map();
    let outOfOrder = 0;
    for (const e of received) {
      const prev = perDevice.get(e.deviceId);
      if (prev !== undefined && prev.localeCompare(e.id, undefined, { numeric: true }) > 0) outOfOrder++;
      perDevice.set(e.deviceId, e.id);
    }
    const throughput = {
      events: received.length,
      recordedInMs: round(recordedMs, 0),
      recordedPerSecond: round((received.length / recordedMs) * 1000, 0),
      deliveredPerSecond: round((received.length / spanMs) * 1000, 0),
      deliveredPerSecondFirstToLast: round((received.length / (last - first)) * 1000, 0),
      serverCpuPct: round((cpuMs / spanMs) * 100, 1),
      outOfOrder,
    };
    h.log(`  ${throughput.events} events recorded in ${throughput.recordedInMs} ms, delivered at ${throughput.deliveredPerSecond}/s (CPU ${throughput.serverCpuPct}%)`);
    received.length = 0;

    // Latency: a steady trickle well below capacity.
    const perTick = Math.max(1, Math.round((p.latencyRate * p.tickMs) / 1000));
    const ticks = Math.round(p.latencyMs / p.tickMs);
    const trickle = Array.from({ length: perTick }, (_, i) => `wh-lat-${i}`);
    const l0 = epoch();
    for (let i = 0; i < ticks; i++) {
      await post(trickle);
      const next = l0 + (i + 1) * p.tickMs;
      const wait = next - epoch();
      if (wait > 0) await sleep(wait);
    }
    await waitFor(ticks * perTick, 30_000);
    const latency = summarize(received.map((e) => e.at - e.timestamp));
    h.log(`  latency at ${p.latencyRate}/s: p50 ${latency.p50} ms, p99 ${latency.p99} ms (n=${latency.n})`);
    return {
      how: 'POST /v1/notifications ttl 0 to offline devices (one notification.expired each) against one gateway with WEBHOOK_URL = a receiver in the bench process',
      throughput,
      latency: { ratePerSecond: p.latencyRate, ms: latency },
      badSignatures,
    };
  } finally {
    await gw.stop();
    await new Promise((resolve) => server.close(resolve));
    server.closeAllConnections?.();
  }
}
