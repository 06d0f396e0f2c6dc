// crash: kill -9 of a gateway process holding N devices (10,000 in a full run), with a second
// process on the same Redis. The devices beat once right before the kill (their last sign of life)
// and do not reconnect. Measured: when the survivor has recorded each device's
// `device.offline {instance_lost}`, read back through GET /v1/events (the pull API, as a backend
// reconciling would), against the contract's bound ttl + sweep + grace + 10 s per device, counted
// from its last heartbeat. The record time of an event is its log id's time; its `lastSeenAt` is
// the last heartbeat. The survivor finds the dead instance's sessions once its liveness key is gone
// and each session's TTL ran out, holds each offline for PRESENCE_EVENT_GRACE_MS from that expiry,
// then records it (flap suppression, see README).
//
// Gateway only: the baseline has no presence events.
import { connectDevices, disconnectAll, epoch, secrets } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'crash';
export const gatewayOnly = 'the baseline records no presence events';

/** SWEEP_INTERVAL_MS of the bench's gateways (bench/lib/harness.mjs). */
const SWEEP_MS = 5_000;

export async function run(h, start, p) {
  const env = { HEARTBEAT_INTERVAL_MS: String(p.intervalMs), PRESENCE_EVENT_GRACE_MS: String(p.graceMs) };
  const servers = [];
  try {
    const survivor = await start({ ...env, INSTANCE_ID: 'bench-crash-survivor' });
    servers.push(survivor);
    const doomed = await start({ ...env, INSTANCE_ID: 'bench-crash-doomed' });
    servers.push(doomed);
    const conn = await connectDevices(h, doomed, { total: p.devices, idPrefix: 'crash-', concurrency: p.concurrency });
    if (conn.ok < p.devices) throw new Error(`only ${conn.ok} of ${p.devices} devices connected: ${JSON.stringify(conn.errors)}`);
    h.log(`  ${conn.ok} devices connected to the doomed process in ${Math.round(conn.ms)} ms`);

    // One heartbeat per device, spread over beatMs: every session's last sign of life is just before the kill.
    const beats = await Promise.all(
      h.loadgens.map(async (lg) => {
        const { held } = await lg.call('status');
        return lg.call('heartbeats', { rate: Math.ceil(held / (p.beatMs / 1000)), warmupMs: 0, durationMs: p.beatMs, interval: p.intervalMs });
      }),
    );
    const beatErrors = beats.reduce((n, b) => n + b.errors + (b.lost ?? 0), 0);
    const sample = await api(survivor, '/v1/devices/crash-0-0');
    const ttlMs = sample.expiresAt - sample.lastHeartbeatAt;
    const boundMs = ttlMs + SWEEP_MS + p.graceMs + 10_000;

    let cursor = await drain(survivor, undefined, () => {});
    const killedAt = epoch();
    doomed.child.kill('SIGKILL');
    h.log(`  killed the doomed process (ttl ${ttlMs} ms, grace ${p.graceMs} ms, sweep ${SWEEP_MS} ms): waiting for ${p.devices} offlines`);

    const perDevice = [];
    const recordedAt = [];
    const reasons = {};
    let userOffline = 0;
    let lastSeenByPull = NaN;
    const offline = new Set();
    const deadline = killedAt + boundMs + 30_000;
    // Until every device has gone offline, whatever the reason (a wrong one is counted, not waited out).
    while (offline.size < p.devices && epoch() < deadline) {
      cursor = await drain(survivor, cursor, (e) => {
        if (e.type === 'user.offline' && String(e.data.userId).startsWith('u-crash-')) userOffline++;
        if (e.type !== 'device.offline' || !String(e.data.deviceId).startsWith('crash-')) return;
        offline.add(e.data.deviceId);
        reasons[e.data.reason] = (reasons[e.data.reason] ?? 0) + 1;
        if (e.data.reason !== 'instance_lost') return;
        const at = Number(e.id.slice(0, e.id.indexOf('-')));
        recordedAt.push(at - killedAt);
        perDevice.push(at - e.data.lastSeenAt);
        lastSeenByPull = epoch() - killedAt;
      });
      await sleep(200);
    }
    const delay = summarize(perDevice);
    const fromKill = summarize(recordedAt);
    const result = {
      devices: p.devices,
      intervalMs: p.intervalMs,
      ttlMs,
      sweepMs: SWEEP_MS,
      graceMs: p.graceMs,
      boundMs,
      heartbeatErrorsBeforeKill: beatErrors,
      instanceLost: perDevice.length,
      offlineReasons: reasons,
      userOffline,
      withinBound: perDevice.filter((ms) => ms <= boundMs).length,
      lastSeenToRecordedMs: { p50: delay.p50, max: delay.max, min: round(Math.min(...perDevice), 3) },
      killToFirstRecordedMs: round(Math.min(...recordedAt), 0),
      killToLastRecordedMs: fromKill.max,
      killToLastReadByPullMs: round(lastSeenByPull, 0),
    };
    h.log(
      `  ${result.instanceLost}/${p.devices} instance_lost (${JSON.stringify(reasons)}), ${userOffline} user.offline; ` +
        `last heartbeat -> recorded p50 ${round(delay.p50 / 1000, 2)} s, max ${round(delay.max / 1000, 2)} s (bound ${boundMs / 1000} s); ` +
        `kill -> first ${round(result.killToFirstRecordedMs / 1000, 2)} s, last ${round(fromKill.max / 1000, 2)} s, read ${round(lastSeenByPull / 1000, 2)} s`,
    );
    return result;
  } finally {
    await disconnectAll(h).catch(() => {});
    for (const s of servers) await s.stop();
  }
}

async function api(server, path) {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${secrets.apiKey}` } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return res.json();
}

/** Reads every event after `after` (pages of 1000), hands each to `each`; returns the cursor. */
async function drain(server, after, each) {
  let cursor = after;
  for (;;) {
    const page = await api(server, `/v1/events?limit=1000${cursor ? `&after=${cursor}` : ''}`);
    page.events.forEach(each);
    cursor = page.next;
    if (page.events.length === 0) return cursor;
  }
}
