// Turns a results object into the targets verdict, the console table, the Markdown report and the
// charts. Every figure comes from the results JSON, so a report can be rebuilt from it
// (`node bench/run.mjs --report bench/results/<file>.json`).
import { ratio, round } from './stats.mjs';
import { lineChart } from './svg.mjs';

const COLORS = { gateway: '#1f6feb', baseline: '#e36209', durable: '#8250df', durableTarget: '#c297ff', target: '#2da44e', gatewayLight: '#79b8ff', baselineLight: '#ffab70' };
/** Issue 11's targets, as the charts mark them. */
export const TARGETS = { postCpuRatio: 1.5, pushP99Ms: 10, fanoutRatio: 0.8, fanoutFirstMs: 20, heartbeatCpuRatio: 1.25, heartbeatRedisRatio: 1.5, connectCpuRatio: 1.3, idleRssMb: 100 };
const fmt = (v, digits = 2) => (v === undefined || v === null || Number.isNaN(v) ? '–' : typeof v === 'number' ? String(round(v, digits)) : String(v));

/** A heartbeat level the server could not keep up with: rate not reached, or acks failed or missing. */
export function saturated(level) {
  return level.achievedPerSecond < 0.95 * level.targetPerSecond || level.errors > 0 || level.unansweredAfterDrain > 0;
}

/**
 * A gateway / baseline ratio against a target's limit: judged on the exact quotient, shown rounded
 * to two digits, or three where two would read as the limit itself (0.797 is not 0.8x).
 */
function judge(gateway, baseline, limit, atMost) {
  const exact = Number.isFinite(gateway) && Number.isFinite(baseline) && baseline !== 0 ? gateway / baseline : null;
  const met = exact !== null && (atMost ? exact <= limit : exact >= limit);
  const shown = ratio(gateway, baseline);
  return { shown: shown === limit && exact !== limit ? ratio(gateway, baseline, 3) : shown, met };
}

/** The issue's targets, each marked met / missed / not measured, with the figures behind it. */
export function evaluateTargets(results) {
  const s = results.scenarios;
  const out = [];
  const add = (id, target, value, met, note) => out.push({ id, target, value, status: met === null ? 'not measured' : met ? 'met' : 'missed', note });

  const conn = s.connections;
  if (conn?.gateway?.points && conn?.baseline?.points) {
    const level = Math.min(conn.gateway.points.at(-1).devices, conn.baseline.points.at(-1).devices);
    const g = conn.gateway.points.findLast((pt) => pt.devices <= level) ?? conn.gateway.points.at(-1);
    const b = conn.baseline.points.findLast((pt) => pt.devices <= level) ?? conn.baseline.points.at(-1);
    const r = judge(g.perConnKb, b.perConnKb, 1.25, true);
    add('memory', 'memory per connection within 1.25x of the baseline', `${fmt(g.perConnKb, 1)} vs ${fmt(b.perConnKb, 1)} KB at ${g.devices} devices = ${r.shown}x`, r.met);
  } else add('memory', 'memory per connection within 1.25x of the baseline', '–', null);

  const connectTarget = `server CPU per handshake within ${TARGETS.connectCpuRatio}x of the baseline (both verify a JWT)`;
  const gc = conn?.gateway?.connectTime;
  const bc = conn?.baseline?.connectTime;
  if (gc?.serverCpuMsPerConnection && bc?.serverCpuMsPerConnection) {
    const r = judge(gc.serverCpuMsPerConnection, bc.serverCpuMsPerConnection, TARGETS.connectCpuRatio, true);
    add('connect-cpu', connectTarget, `${fmt(gc.serverCpuMsPerConnection, 3)} vs ${fmt(bc.serverCpuMsPerConnection, 3)} ms over ${gc.devices} handshakes = ${r.shown}x${gc.how ? ` (${gc.how})` : ''}`, r.met);
  } else add('connect-cpu', connectTarget, '–', null);

  const idleTarget = `empty process RSS at most ${TARGETS.idleRssMb} MB`;
  const idle = conn?.gateway?.idle?.rssMb;
  if (idle) add('idle-rss', idleTarget, `${fmt(idle, 1)} MB (baseline ${fmt(conn.baseline?.idle?.rssMb, 1)} MB)`, idle <= TARGETS.idleRssMb);
  else add('idle-rss', idleTarget, '–', null);

  const hb = s.heartbeats;
  if (hb?.gateway?.levels && hb?.baseline?.levels) {
    const parts = [];
    let met = true;
    hb.gateway.levels.forEach((g, i) => {
      const b = hb.baseline.levels[i] ?? {};
      const r = judge(g.cpuMsPer1k, b.cpuMsPer1k, TARGETS.heartbeatCpuRatio, true);
      if (saturated(g) && saturated(b)) parts.push(`both saturated at ${g.targetPerSecond}/s (${g.achievedPerSecond} vs ${b.achievedPerSecond}/s)`);
      else if (saturated(g)) {
        met = false;
        parts.push(`at ${g.targetPerSecond}/s the gateway saturated at ${g.achievedPerSecond}/s (baseline ${b.achievedPerSecond}/s)`);
      } else {
        if (!r.met) met = false;
        parts.push(`${r.shown}x at ${g.targetPerSecond}/s`);
      }
    });
    const rt = hb.gateway.roundTrips?.roundTripsPerHeartbeat;
    if (!(rt <= 1.01)) met = false;
    add('heartbeat-cpu', `heartbeat CPU within ${TARGETS.heartbeatCpuRatio}x of the baseline, at most one Redis round trip per heartbeat`, `${parts.join(', ')}; ${rt} round trips per heartbeat`, met);
  } else add('heartbeat-cpu', `heartbeat CPU within ${TARGETS.heartbeatCpuRatio}x of the baseline, at most one Redis round trip per heartbeat`, '–', null);

  const hbRedisTarget = `heartbeat Redis CPU within ${TARGETS.heartbeatRedisRatio}x of the baseline that makes the contract's Redis writes (durable), at every rate`;
  if (hb?.gateway?.levels && hb?.durable?.levels && hb?.baseline?.levels) {
    let met = true;
    const parts = hb.gateway.levels.map((g, i) => {
      const d = hb.durable.levels[i] ?? {};
      const b = hb.baseline.levels[i] ?? {};
      const r = judge(g.redisCpuMsPer1k, d.redisCpuMsPer1k, TARGETS.heartbeatRedisRatio, true);
      // A saturated gateway fails the heartbeat CPU target already; a saturated durable baseline
      // is judged all the same (its Redis CPU is what that rate costs it).
      if (!r.met) met = false;
      return `${r.shown}x at ${g.targetPerSecond}/s (${fmt(g.redisCpuMsPer1k, 1)} vs ${fmt(d.redisCpuMsPer1k, 1)} CPU-ms per 1k${saturated(d) ? ', durable saturated' : ''}; bare baseline ${fmt(b.redisCpuMsPer1k, 1)}: ${ratio(g.redisCpuMsPer1k, b.redisCpuMsPer1k)}x${saturated(b) ? ', saturated' : ''})`;
    });
    add('heartbeat-redis', hbRedisTarget, parts.join('; '), met);
  } else add('heartbeat-redis', hbRedisTarget, '–', null);

  const push = s.push?.gateway;
  if (push?.oneDevice) {
    const p1 = push.oneDevice.latencyMs.p99;
    const p3 = push.userWith3Devices?.latencyMs.p99;
    add('push-p99', `push p99 under 10 ms at ${s.push.gateway.ratePerSecond}/s`, `one device ${fmt(p1)} ms, user with 3 devices ${fmt(p3)} ms`, p1 < 10 && (p3 === undefined || p3 < 10));
  } else add('push-p99', 'push p99 under 10 ms at 1k/s', '–', null);

  const postCpuTarget = `CPU per POST within ${TARGETS.postCpuRatio}x of the baseline that makes the contract's Redis writes (durable), at ${s.push?.gateway?.ratePerSecond ?? 1000}/s`;
  const pd = s.push?.durable;
  if (push?.oneDevice && pd?.oneDevice && s.push.baseline?.oneDevice) {
    const cases = [['one device', 'oneDevice'], ['user with 3 devices', 'userWith3Devices']].filter(([, k]) => push[k] && pd[k]);
    const judged = cases.map(([label, k]) => {
      const bare = s.push.baseline[k]?.cpuMsPerPost;
      const r = judge(push[k].cpuMsPerPost, pd[k].cpuMsPerPost, TARGETS.postCpuRatio, true);
      return { met: r.met, text: `${label} ${fmt(push[k].cpuMsPerPost, 3)} vs ${fmt(pd[k].cpuMsPerPost, 3)} ms = ${r.shown}x (bare baseline ${fmt(bare, 3)} ms: ${ratio(push[k].cpuMsPerPost, bare)}x)` };
    });
    add('post-cpu', postCpuTarget, judged.map((j) => j.text).join('; '), judged.every((j) => j.met));
  } else add('post-cpu', postCpuTarget, '–', null);

  const fan = s.fanout;
  if (fan?.gateway?.messagesPerSecond && fan?.baseline?.messagesPerSecond) {
    const r = judge(fan.gateway.messagesPerSecond, fan.baseline.messagesPerSecond, 0.8, false);
    const via = fan.gateway.user ? 'topic, ' : '';
    const ru = fan.gateway.user && fan.baseline.user ? ratio(fan.gateway.user.messagesPerSecond, fan.baseline.user.messagesPerSecond) : null;
    const userPart = ru === null ? '' : ` (user with ${fan.gateway.devices} devices: ${fan.gateway.user.messagesPerSecond} vs ${fan.baseline.user.messagesPerSecond} = ${ru}x)`;
    const fd = fan.durable?.messagesPerSecond;
    const durablePart = fd ? `; the durable baseline (the contract's Redis writes, done the simplest way): ${fd} msg/s, the gateway ${ratio(fan.gateway.messagesPerSecond, fd)}x of it` : '';
    add('fanout', 'fan-out at least 0.8x the baseline messages/s', `${via}${fan.gateway.messagesPerSecond} vs ${fan.baseline.messagesPerSecond} msg/s to ${fan.gateway.devices} devices = ${r.shown}x${userPart}${durablePart}`, r.met);
  } else add('fanout', 'fan-out at least 0.8x the baseline messages/s', '–', null);

  // Issue 11's row is about topic subscribers; the user variant's figure is given beside it.
  const firstTarget = `fan-out to topic subscribers: the first device receives within ${TARGETS.fanoutFirstMs} ms`;
  if (fan?.gateway?.timeToFirstMs !== undefined) {
    const userFirst = fan.gateway.user?.timeToFirstMs;
    const userPart = userFirst === undefined ? '' : `; a user with as many devices: ${fmt(userFirst, 1)} ms (baseline ${fmt(fan.baseline?.user?.timeToFirstMs, 1)} ms)`;
    add('fanout-first', firstTarget, `${fmt(fan.gateway.timeToFirstMs, 1)} ms to ${fan.gateway.devices} devices (baseline ${fmt(fan.baseline?.timeToFirstMs, 1)} ms)${userPart}`, fan.gateway.timeToFirstMs <= TARGETS.fanoutFirstMs);
  } else add('fanout-first', firstTarget, '–', null);

  const sweep = s.sweep?.gateway;
  if (sweep?.points) {
    const first = sweep.points[0];
    const last = sweep.points.at(-1);
    const r = judge(last.medianMs, first.medianMs, 2, true);
    add('sweep', `sweep with ${last.healthy} healthy within 2x of the time with ${first.healthy} healthy`, `${fmt(first.medianMs)} ms -> ${fmt(last.medianMs)} ms = ${r.shown}x`, r.met);
  } else add('sweep', 'sweep time with 50k healthy within 2x of the time with 1k healthy', '–', null);

  const ov = s.overload?.gateway;
  if (ov?.sustainedPerSecond) {
    const expired = ov.expiredBySweep + ov.refusedAsExpired + ov.disconnected;
    add(
      'overload',
      'at twice the heartbeat rate one process sustains, no live device expires',
      `${ov.overloadPerSecond}/s for ${ov.overloadSeconds} s (sustains ${ov.sustainedPerSecond}/s), ${ov.devices} devices each beating every ` +
        `${Math.round((ov.devices / ov.overloadPerSecond) * 1000)} ms (interval ${ov.intervalMs} ms): ${ov.expiredBySweep} swept, ` +
        `${ov.refusedAsExpired} refused, ${ov.disconnected} disconnected, ${ov.onlineAfter} online after`,
      ov.everyDeviceBeatWithinInterval && expired === 0 && ov.onlineAfter === ov.devices,
    );
  } else add('overload', 'at twice the heartbeat rate one process sustains, no live device expires', ov?.error ?? '–', null);
  const fl = s.flood?.gateway;
  const floodTarget = 'while one socket floods unpaced, the other devices\' heartbeat ack p99 under 250 ms and none of them disconnected';
  if (fl?.flood) {
    const f = fl.flood;
    add(
      'flood',
      floodTarget,
      `p99 ${fmt(f.ackLatencyMs.p99)} ms (without the flood ${fmt(fl.control.ackLatencyMs.p99)} ms), ${f.othersDisconnected} disconnected, ` +
        `${f.errors + f.unanswered} heartbeats failed; flooder ended ${f.flooder?.ended?.rate_limited ?? 0}x in ${f.durationMs / 1000} s`,
      f.ackLatencyMs.p99 < 250 && f.othersDisconnected === 0 && f.errors + f.unanswered === 0,
    );
  } else add('flood', floodTarget, '–', null);

  const cr = s.crash?.gateway;
  const crashTarget = 'a crash of an instance holding 10k devices yields 10k device.offline {instance_lost} within ttl + sweep + grace + 10 s';
  if (cr?.boundMs) {
    add(
      'crash',
      crashTarget,
      `${cr.instanceLost} of ${cr.devices} instance_lost, ${cr.withinBound} within ${cr.boundMs / 1000} s of their last heartbeat ` +
        `(max ${fmt(cr.lastSeenToRecordedMs.max / 1000)} s); all read by GET /v1/events ${fmt(cr.killToLastReadByPullMs / 1000)} s after the kill`,
      // With fewer than 10k devices (--quick) a pass is not the target met: not measured, with the figures.
      cr.instanceLost !== cr.devices || cr.withinBound !== cr.devices ? false : cr.devices >= 10_000 ? true : null,
    );
  } else add('crash', crashTarget, cr?.error ?? '–', null);

  const whTarget = 'one process delivers at least 2,000 webhook events/s to a local receiver';
  const wht = s.webhooks?.gateway?.throughput;
  if (wht) add('webhooks', whTarget, `${wht.deliveredPerSecond}/s (${wht.outOfOrder} out of order)`, wht.deliveredPerSecond >= 2_000 && wht.outOfOrder === 0);
  else add('webhooks', whTarget, '–', null);

  const max = conn?.gateway?.max;
  if (max) add('max-devices', 'one process holds at least 19k devices', `${max.held} devices (${max.stoppedBecause})`, max.held >= 19_000);
  else add('max-devices', 'one process holds at least 19k devices', results.meta.mode === 'quick' ? 'not probed in --quick mode' : '–', null);
  return out;
}

/** [section, metric, gateway, baseline, ratio] rows shared by the console table and the Markdown. */
export function rows(results) {
  const s = results.scenarios;
  const out = [];
  const row = (section, metric, g, b, digits = 2, showRatio = true) =>
    out.push([section, metric, fmt(g, digits), fmt(b, digits), showRatio ? fmt(ratio(g, b)) : '']);

  const c = s.connections;
  if (c?.gateway && c?.baseline) {
    row('connections', 'idle RSS (MB)', c.gateway.idle?.rssMb, c.baseline.idle?.rssMb, 1);
    (c.gateway.points ?? []).forEach((g, i) => {
      const b = c.baseline.points?.[i];
      row('connections', `RSS per connection at ${g.devices} (KB)`, g.perConnKb, b?.perConnKb, 1);
    });
    const gl = c.gateway.points?.at(-1);
    const bl = c.baseline.points?.at(-1);
    row('connections', `JS heap per connection at ${gl?.devices} (KB)`, gl?.heapPerConnKb, bl?.heapPerConnKb, 1);
    row('connections', `RSS at ${gl?.devices} (MB)`, gl?.rssMb, bl?.rssMb, 1);
    row('connections', `time to connect ${c.gateway.connectTime?.devices} (s)`, c.gateway.connectTime?.ms / 1000, c.baseline.connectTime?.ms / 1000);
    row('connections', 'server CPU per connection (ms)', c.gateway.connectTime?.serverCpuMsPerConnection, c.baseline.connectTime?.serverCpuMsPerConnection, 3);
    if (c.gateway.max || c.baseline.max) {
      row('connections', 'most devices one process held', c.gateway.max?.held, c.baseline.max?.held, 0);
      row('connections', 'RSS per connection at that count (KB)', c.gateway.max?.perConnKb, c.baseline.max?.perConnKb, 1);
    }
  } else if (c) out.push(['connections', 'error', c.gateway?.error ?? '', c.baseline?.error ?? '', '']);

  const h = s.heartbeats;
  if (h?.gateway?.levels && h?.baseline?.levels) {
    row('heartbeats', `idle CPU with ${h.gateway.devices} devices (%)`, h.gateway.idle?.serverCpuPct, h.baseline.idle?.serverCpuPct, 1);
    h.gateway.levels.forEach((g, i) => {
      const b = h.baseline.levels[i] ?? {};
      const tag = `${g.targetPerSecond / 1000}k/s`;
      if (saturated(g) || saturated(b)) {
        row(`heartbeats ${tag}`, 'saturated (rate not reached or acks failed)', saturated(g) ? 'yes' : 'no', saturated(b) ? 'yes' : 'no', 0, false);
      }
      row(`heartbeats ${tag}`, 'achieved heartbeats/s', g.achievedPerSecond, b.achievedPerSecond, 0);
      row(`heartbeats ${tag}`, 'server CPU-ms per 1k heartbeats', g.cpuMsPer1k, b.cpuMsPer1k);
      row(`heartbeats ${tag}`, 'server CPU (% of one core)', g.serverCpuPct, b.serverCpuPct, 1);
      row(`heartbeats ${tag}`, 'Redis commands per heartbeat (incl. in Lua)', g.redisCommandsPerHeartbeat, b.redisCommandsPerHeartbeat);
      row(`heartbeats ${tag}`, 'Redis CPU-ms per 1k heartbeats', g.redisCpuMsPer1k, b.redisCpuMsPer1k);
      row(`heartbeats ${tag}`, 'ack latency p50 (ms)', g.ackLatencyMs?.p50, b.ackLatencyMs?.p50);
      row(`heartbeats ${tag}`, 'ack latency p99 (ms)', g.ackLatencyMs?.p99, b.ackLatencyMs?.p99);
      if (g.errors || g.unansweredAfterDrain || b.errors || b.unansweredAfterDrain) {
        row(`heartbeats ${tag}`, 'error acks / unanswered', `${g.errors} / ${g.unansweredAfterDrain}`, `${b.errors} / ${b.unansweredAfterDrain}`, 0, false);
      }
      row(`heartbeats ${tag}`, 'load generators / other processes CPU (%)', `${g.loadgenCpuPct} / ${g.otherProcessesCpuPct}`, `${b.loadgenCpuPct} / ${b.otherProcessesCpuPct}`, 1, false);
      const d = h.durable?.levels?.[i];
      if (d) {
        if (saturated(d)) row(`heartbeats ${tag}`, 'durable baseline: saturated (rate not reached or acks failed)', saturated(g) ? 'yes' : 'no', 'yes', 0, false);
        row(`heartbeats ${tag}`, 'durable baseline: server CPU-ms per 1k heartbeats', g.cpuMsPer1k, d.cpuMsPer1k);
        row(`heartbeats ${tag}`, 'durable baseline: Redis commands per heartbeat (incl. in Lua)', g.redisCommandsPerHeartbeat, d.redisCommandsPerHeartbeat);
        row(`heartbeats ${tag}`, 'durable baseline: Redis CPU-ms per 1k heartbeats', g.redisCpuMsPer1k, d.redisCpuMsPer1k);
        row(`heartbeats ${tag}`, 'durable baseline: ack latency p99 (ms)', g.ackLatencyMs?.p99, d.ackLatencyMs?.p99);
      }
    });
    row('heartbeats', 'Redis round trips per heartbeat', h.gateway.roundTrips?.roundTripsPerHeartbeat, h.baseline.roundTrips?.roundTripsPerHeartbeat);
    row('heartbeats', 'Redis commands inside Lua per heartbeat', h.gateway.roundTrips?.luaCommandsPerHeartbeat, h.baseline.roundTrips?.luaCommandsPerHeartbeat, 2, false);
  } else if (h) out.push(['heartbeats', 'error', h.gateway?.error ?? '', h.baseline?.error ?? '', '']);

  const p = s.push;
  if (p?.gateway?.oneDevice && p?.baseline?.oneDevice) {
    const keys = Object.keys(p.gateway).filter((k) => p.gateway[k]?.latencyMs && p.baseline[k]?.latencyMs);
    for (const key of keys) {
      const g = p.gateway[key];
      const b = p.baseline[key];
      const label = key === 'userWith3Devices' ? 'user with 3 devices' : key === 'overload' ? `one device, from ${g.connections} connections (past saturation)` : 'one device';
      const sec = `push ${g.ratePerSecond ?? p.gateway.ratePerSecond}/s, ${label}`;
      if (key === 'overload') row(sec, 'POSTs shed, 503 + Retry-After (%)', g.shedPct, b.shedPct, 1, false);
      row(sec, 'POST sent -> receipt p50 (ms)', g.latencyMs.p50, b.latencyMs.p50);
      row(sec, 'POST sent -> receipt p99 (ms)', g.latencyMs.p99, b.latencyMs.p99);
      row(sec, 'POST sent -> receipt max (ms)', g.latencyMs.max, b.latencyMs.max);
      row(sec, 'POST round trip p99 (ms)', g.postRoundTripMs.p99, b.postRoundTripMs.p99);
      row(sec, 'received / expected', `${g.receipts}/${g.expectedReceipts}`, `${b.receipts}/${b.expectedReceipts}`, 0, false);
      if (g.skippedAtInFlightCap || b.skippedAtInFlightCap) {
        row(sec, `POSTs not sent (${key === 'overload' ? g.connections : 256} already in flight)`, g.skippedAtInFlightCap, b.skippedAtInFlightCap, 0, false);
      }
      row(sec, 'server CPU per POST (ms)', g.cpuMsPerPost, b.cpuMsPerPost, 3);
      row(sec, 'server CPU (% of one core)', g.serverCpuPct, b.serverCpuPct, 1);
      const d = p.durable?.[key];
      if (d?.latencyMs) {
        // The third server: the baseline with the contract's Redis writes, in the baseline column.
        row(sec, 'durable baseline: server CPU per POST (ms)', g.cpuMsPerPost, d.cpuMsPerPost, 3);
        row(sec, 'durable baseline: POST sent -> receipt p99 (ms)', g.latencyMs.p99, d.latencyMs.p99);
      }
    }
  } else if (p) out.push(['push', 'error', p.gateway?.error ?? '', p.baseline?.error ?? '', '']);

  const f = s.fanout;
  if (f?.gateway?.rounds && f?.baseline?.rounds) {
    const sec = f.gateway.user ? `fan-out to topic, ${f.gateway.devices} subscribers` : `fan-out to ${f.gateway.devices}`;
    row(sec, 'time to first receipt (ms)', f.gateway.timeToFirstMs, f.baseline.timeToFirstMs, 1);
    row(sec, 'time to last receipt (ms)', f.gateway.timeToLastMs, f.baseline.timeToLastMs, 1);
    row(sec, 'messages/s', f.gateway.messagesPerSecond, f.baseline.messagesPerSecond, 0);
    row(sec, 'POST round trip (ms)', f.gateway.postRoundTripMs, f.baseline.postRoundTripMs, 1);
    // CPU over a round (POST to the poll that saw the last receipt): on 2 shared cores the round's
    // time follows the sum of the three, and the gateway's Redis share is the publish's inbox writes.
    if (f.gateway.serverCpuMs !== undefined) {
      row(sec, 'server CPU per round (ms)', f.gateway.serverCpuMs, f.baseline.serverCpuMs, 0);
      row(sec, 'Redis CPU per round (ms)', f.gateway.redisCpuMs, f.baseline.redisCpuMs, 0, false);
      row(sec, "load generators' CPU per round (ms)", f.gateway.loadgenCpuMs, f.baseline.loadgenCpuMs, 0);
    }
    const d = f.durable;
    if (d?.rounds) {
      // The third server: the baseline with the contract's Redis writes, in the baseline column.
      row(sec, 'durable baseline: time to first / last receipt (ms)', `${fmt(f.gateway.timeToFirstMs, 1)} / ${fmt(f.gateway.timeToLastMs, 1)}`, `${fmt(d.timeToFirstMs, 1)} / ${fmt(d.timeToLastMs, 1)}`, 1, false);
      row(sec, 'durable baseline: messages/s', f.gateway.messagesPerSecond, d.messagesPerSecond, 0);
      if (d.serverCpuMs !== undefined) {
        row(sec, 'durable baseline: server / Redis CPU per round (ms)', `${fmt(f.gateway.serverCpuMs, 0)} / ${fmt(f.gateway.redisCpuMs, 0)}`, `${fmt(d.serverCpuMs, 0)} / ${fmt(d.redisCpuMs, 0)}`, 0, false);
      }
    }
    if (f.gateway.user && f.baseline.user) {
      const u = `fan-out to a user with ${f.gateway.devices} devices`;
      row(u, 'time to last receipt (ms)', f.gateway.user.timeToLastMs, f.baseline.user.timeToLastMs, 1);
      row(u, 'messages/s', f.gateway.user.messagesPerSecond, f.baseline.user.messagesPerSecond, 0);
      row(u, 'POST round trip (ms)', f.gateway.user.postRoundTripMs, f.baseline.user.postRoundTripMs, 1);
      if (d?.user) row(u, 'durable baseline: messages/s', f.gateway.user.messagesPerSecond, d.user.messagesPerSecond, 0);
    }
    for (const g of f.gateway.curve ?? []) {
      const b = f.baseline.curve?.find((c) => c.devices === g.devices);
      if (g.devices === f.gateway.devices) continue;
      const c = `fan-out to topic, ${g.devices} subscribers`;
      row(c, 'time to first / last receipt (ms)', `${fmt(g.timeToFirstMs, 1)} / ${fmt(g.timeToLastMs, 1)}`, b ? `${fmt(b.timeToFirstMs, 1)} / ${fmt(b.timeToLastMs, 1)}` : '–', 1, false);
      row(c, 'messages/s', g.messagesPerSecond, b?.messagesPerSecond, 0);
    }
  } else if (f) out.push(['fan-out', 'error', f.gateway?.error ?? '', f.baseline?.error ?? '', '']);

  const w = s.sweep;
  if (w?.gateway?.points && w?.baseline?.points) {
    w.gateway.points.forEach((g, i) => {
      row('sweep (store level)', `${g.expired} expired among ${g.healthy} healthy (ms)`, g.medianMs, w.baseline.points[i]?.medianMs);
    });
    row('sweep (store level)', `growth ${w.gateway.points[0].healthy} -> ${w.gateway.points.at(-1).healthy} healthy`, w.gateway.growth, w.baseline.growth);
  } else if (w) out.push(['sweep', 'error', w.gateway?.error ?? '', w.baseline?.error ?? '', '']);

  const fl = s.flood;
  if (fl?.gateway?.flood || fl?.baseline?.flood) {
    const g = fl.gateway ?? {};
    const b = fl.baseline ?? {};
    const sec = `flood: 1 socket unpaced, ${g.devices ?? b.devices} devices beating ${g.heartbeatsPerSecond ?? b.heartbeatsPerSecond}/s`;
    row(sec, 'heartbeat ack p50 without / during the flood (ms)', `${fmt(g.control?.ackLatencyMs.p50)} / ${fmt(g.flood?.ackLatencyMs.p50)}`, `${fmt(b.control?.ackLatencyMs.p50)} / ${fmt(b.flood?.ackLatencyMs.p50)}`, 2, false);
    row(sec, 'heartbeat ack p99 without / during the flood (ms)', `${fmt(g.control?.ackLatencyMs.p99)} / ${fmt(g.flood?.ackLatencyMs.p99)}`, `${fmt(b.control?.ackLatencyMs.p99)} / ${fmt(b.flood?.ackLatencyMs.p99)}`, 2, false);
    row(sec, 'heartbeat ack max during the flood (ms)', g.flood?.ackLatencyMs.max, b.flood?.ackLatencyMs.max);
    row(sec, 'heartbeats failed (error acks + unanswered) during the flood', g.flood && g.flood.errors + g.flood.unanswered, b.flood && b.flood.errors + b.flood.unanswered, 0, false);
    row(sec, 'other devices disconnected', g.flood?.othersDisconnected, b.flood?.othersDisconnected, 0, false);
    row(sec, '/health/ready p99 / max during the flood (ms)', `${fmt(g.flood?.health.p99)} / ${fmt(g.flood?.health.max)}`, `${fmt(b.flood?.health.p99)} / ${fmt(b.flood?.health.max)}`, 2, false);
    row(sec, 'server event-loop delay p99 / max during the flood (ms)', `${fmt(g.flood?.serverLoopDelayMs?.p99)} / ${fmt(g.flood?.serverLoopDelayMs?.max)}`, `${fmt(b.flood?.serverLoopDelayMs?.p99)} / ${fmt(b.flood?.serverLoopDelayMs?.max)}`, 2, false);
    row(sec, 'load generators / other processes CPU during the flood (%)', `${fmt(g.flood?.loadgenCpuPct, 1)} / ${fmt(g.flood?.otherProcessesCpuPct, 1)}`, `${fmt(b.flood?.loadgenCpuPct, 1)} / ${fmt(b.flood?.otherProcessesCpuPct, 1)}`, 1, false);
    row(sec, 'server CPU without / during the flood (% of one core)', `${fmt(g.control?.serverCpuPct, 1)} / ${fmt(g.flood?.serverCpuPct, 1)}`, `${fmt(b.control?.serverCpuPct, 1)} / ${fmt(b.flood?.serverCpuPct, 1)}`, 1, false);
    row(sec, 'flooder frames sent per second', g.flood?.flooder?.sentPerSecond, b.flood?.flooder?.sentPerSecond, 0);
    const ends = (x) => (x?.flooder ? `${Object.entries(x.flooder.ended).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'} (${x.flooder.connections} connections)` : '–');
    row(sec, 'flooder sessions ended by the server', ends(g.flood), ends(b.flood), 0, false);
  } else if (fl) out.push(['flood', 'error', fl.gateway?.error ?? '', fl.baseline?.error ?? '', '']);

  const inst = s.instances;
  const ig = inst?.gateway;
  if (ig?.one && ig?.two) {
    const na = (section, metric, v, digits = 2) => out.push([section, metric, fmt(v, digits), 'n/a', '']);
    for (const ph of [ig.one, ig.two]) {
      const sec = `${ph.processes} gateway process${ph.processes > 1 ? 'es' : ''}, ${ig.devices} devices`;
      na(sec, 'connections held, total', ph.connectionsHeld, 0);
      if (ph.processes > 1) na(sec, 'connections held per process', ph.perProcess.map((x) => x.connectionsHeld).join(' + '));
      na(sec, 'online in GET /v1/presence (instances report)', `${ph.presenceOnline ?? '–'} (${ph.perProcess.map((x) => x.reportedOnline ?? '–').join(' + ')})`);
      na(sec, 'RSS after the heartbeat runs, no GC, all processes (MB)', ph.processes > 1 ? `${ph.rssMbTotal} (${ph.perProcess.map((x) => x.rssMb).join(' + ')})` : ph.rssMbTotal, 1);
      for (const l of ph.levels) {
        const tag = `${l.targetPerSecond / 1000}k/s`;
        na(sec, `${tag}: achieved heartbeats/s`, l.achievedPerSecond, 0);
        na(sec, `${tag}: server CPU-ms per 1k heartbeats (all processes)`, l.cpuMsPer1k);
        na(sec, `${tag}: ack latency p99 (ms)`, l.ackLatencyMs?.p99);
      }
    }
    for (const c of ig.comparison) na('several instances', `CPU per 1k heartbeats at ${c.targetPerSecond / 1000}k/s, 2 processes / 1`, c.ratio);
  } else if (inst?.reason) out.push(['several instances', inst.reason, 'n/a', 'n/a', '']);
  else if (ig?.error) out.push(['several instances', 'error', ig.error, 'n/a', '']);

  const cr = s.crash?.gateway;
  if (cr?.boundMs) {
    const na = (metric, v, digits = 2) => out.push([`crash (kill -9 of 1 of 2 processes, ${cr.devices} devices)`, metric, fmt(v, digits), 'n/a', '']);
    na('device.offline {instance_lost} recorded / devices', `${cr.instanceLost} / ${cr.devices}`);
    na('other offline reasons', Object.entries(cr.offlineReasons).filter(([k]) => k !== 'instance_lost').map(([k, v]) => `${v} ${k}`).join(', ') || 'none');
    na('user.offline recorded', cr.userOffline, 0);
    na('bound: ttl + sweep + grace + 10 s (s)', `${cr.ttlMs / 1000} + ${cr.sweepMs / 1000} + ${cr.graceMs / 1000} + 10 = ${cr.boundMs / 1000}`);
    na('last heartbeat -> offline recorded, min / p50 / max (s)', `${fmt(cr.lastSeenToRecordedMs.min / 1000)} / ${fmt(cr.lastSeenToRecordedMs.p50 / 1000)} / ${fmt(cr.lastSeenToRecordedMs.max / 1000)}`);
    na('offlines within the bound', `${cr.withinBound} / ${cr.devices}`);
    na('kill -> first / last offline recorded (s)', `${fmt(cr.killToFirstRecordedMs / 1000)} / ${fmt(cr.killToLastRecordedMs / 1000)}`);
    na('kill -> last offline read by GET /v1/events (s)', cr.killToLastReadByPullMs / 1000);
  } else if (s.crash?.reason) out.push(['crash', s.crash.reason, 'n/a', 'n/a', '']);
  else if (cr?.error) out.push(['crash', 'error', cr.error, 'n/a', '']);
  const wh = s.webhooks?.gateway;
  if (wh?.throughput) {
    const na = (metric, v, digits = 2) => out.push([`webhooks (1 process, local receiver)`, metric, fmt(v, digits), 'n/a', '']);
    na(`events delivered per second (${wh.throughput.events} recorded at once)`, wh.throughput.deliveredPerSecond, 0);
    na('server CPU while delivering (% of one core)', wh.throughput.serverCpuPct, 1);
    na('events out of order per device', wh.throughput.outOfOrder, 0);
    na(`change to receiver at ${wh.latency.ratePerSecond}/s: p50 / p99 (ms)`, `${fmt(wh.latency.ms.p50)} / ${fmt(wh.latency.ms.p99)}`);
  } else if (wh?.error) out.push(['webhooks', 'error', wh.error, 'n/a', '']);

  const ov = s.overload?.gateway;
  if (ov?.sustainedPerSecond) {
    const na = (metric, v, digits = 2) => out.push([`overload (${ov.devices} devices, ${ov.intervalMs} ms interval)`, metric, fmt(v, digits), 'n/a', '']);
    na('heartbeats/s one process sustains', ov.sustainedPerSecond, 0);
    na(`sent for ${ov.overloadSeconds} s at 2x (heartbeats/s)`, ov.sentPerSecond, 0);
    na('acked heartbeats/s meanwhile', ov.ackedPerSecond, 0);
    na('ack latency p50 / p99 (ms)', `${fmt(ov.ackLatencyMs?.p50)} / ${fmt(ov.ackLatencyMs?.p99)}`);
    na('acks "unavailable" / unanswered', `${ov.unavailableAcks} / ${ov.unansweredAfterDrain}`);
    na('sessions swept / heartbeats refused as expired', `${ov.expiredBySweep} / ${ov.refusedAsExpired}`);
    na('devices disconnected / online after', `${ov.disconnected} / ${ov.onlineAfter}`);
    na('REST requests shed (503)', ov.restShed, 0);
  } else if (ov?.error) out.push(['overload', 'error', ov.error, 'n/a', '']);
  return out;
}

export function consoleTable(results) {
  const header = ['scenario', 'metric', 'gateway', 'baseline', 'ratio'];
  const data = [header, ...rows(results)];
  const widths = header.map((_, i) => Math.min(60, Math.max(...data.map((r) => String(r[i]).length))));
  const line = (r) => r.map((v, i) => String(v).slice(0, 60).padEnd(widths[i])).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...data.slice(1).map(line)];
  out.push('', 'Targets:');
  for (const t of results.targets) out.push(`  [${t.status}] ${t.target}: ${t.value}`);
  return out.join('\n');
}

function mdTable(header, body) {
  const esc = (v) => String(v).replace(/\|/g, '\\|');
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export function machineLines(meta) {
  const m = meta.machine;
  return [
    `- CPU: ${m.cpuModel}, ${m.cpus} cores (nproc ${m.nproc})`,
    `- Memory: ${m.memTotalGiB} GiB; per-process open-file limit ${m.fdLimit}`,
    `- Node ${m.node}, Redis ${m.redis}, ${m.os}`,
    `- Shared machine: other processes used CPU during the run (see "other processes CPU" per heartbeat level)`,
  ];
}

/** The results table and targets as Markdown (used in the report and in docs/performance.md). */
export function resultsMarkdown(results) {
  const t = results.targets.map((x) => [x.status === 'met' ? '✅ met' : x.status === 'missed' ? '❌ missed' : '– not measured', x.target, x.value]);
  return [
    mdTable(['scenario', 'metric', 'gateway', 'baseline', 'gateway / baseline'], rows(results)),
    '',
    '**Targets**',
    '',
    mdTable(['status', 'target', 'measured'], t),
  ].join('\n');
}

export function reportMarkdown(results) {
  const { meta } = results;
  const lines = [
    `# push-gateway benchmark, ${meta.date} (${meta.mode})`,
    '',
    `Gateway (\`dist/main.js\`, commit ${meta.commit}) against a bare Socket.IO ${meta.socketIo} + ioredis baseline ` +
      '(`bench/baseline-server.mjs`), both on loopback with the bench\'s own Redis, alternating per scenario ' +
      `(order per scenario in the JSON). Run took ${Math.round(meta.durationSeconds)} s.`,
    '',
    '## Machine',
    ...machineLines(meta),
    '',
    '## Results',
    '',
    resultsMarkdown(results),
    '',
    '## Notes',
    '- Memory: RSS after a memory-reducing full GC (both servers run with `--expose-gc` and a SIGUSR2 probe), minus the idle RSS, divided by the devices connected.',
    '- Connections: the two servers run side by side, each with its own devices, connecting in chunks that take turns (the order flipping every pair), so host noise falls on both; server CPU per connection pools each server\'s chunks (each chunk\'s figure is in the JSON under `connectTime.chunks`). The most devices one process holds is probed one server at a time: the first with the other\'s devices still connected, the second after the first\'s were closed.',
    '- Heartbeat CPU: utime+stime of the server process from /proc over the measured window; Redis commands from `INFO` (commands a Lua script runs count too); round trips from a separate `MONITOR` sample (client commands vs. `lua` ones).',
    '- Heartbeat rates are targets; the achieved rate is what the load generators (on the same 2 cores) managed, and CPU per 1k is computed from the achieved rate.',
    ...(results.scenarios.heartbeats?.durable
      ? ['- Heartbeats, durable baseline: the baseline with `BASELINE_DURABLE=1`, whose heartbeat does the Redis work the contract asks of one in the simplest way: one script call per heartbeat that extends the presence key only while it names the socket\'s session (a replaced socket must not keep the newer session alive) and records the heartbeat\'s time and expiry in the device\'s hash, which outlives the key (`lastSeenAt` of `device.offline`, GET /v1/devices). Its rows are marked "durable baseline"; the heartbeat Redis CPU target is judged against it, the bare baseline\'s ratio given beside; the heartbeat CPU target stays judged against the bare baseline.']
      : []),
    '- Push latency: from writing the POST to the device\'s `notification` handler, in one process; the device acks every notification. The three servers run side by side and take turns: each case is measured in several windows per server (the order flipping every lap), and its p50/p99 pool every receipt of that server\'s windows (the JSON keeps each window\'s under `windows`).',
    ...(results.scenarios.fanout?.durable
      ? ['- Fan-out, durable baseline (`--set fanout.durable=1`): the same baseline with `BASELINE_DURABLE=1` runs the headline rounds (topic and user) beside the other two: one script call storing the notification and an inbox entry per device before the emits, one call per ack recording the receipt. Its rows are marked "durable baseline"; the fan-out target stays judged against the bare baseline.']
      : []),
    '- Push, durable baseline: the baseline with `BASELINE_DURABLE=1`, the Redis writes the gateway\'s contract asks of a publish done in the simplest way (one script call per POST that counts a shared rate limit and stores the notification and an inbox entry per target before the emit and the 202; one call per ack recording the receipt). Its rows are marked "durable baseline"; the CPU per POST target is judged against it, the bare baseline\'s ratio given beside.',
    `- Fan-out: ${results.scenarios.fanout?.gateway?.how ?? 'one POST to a user with N devices'}.`,
    '- Sweep: store level, median of repeated sweeps; gateway = `RedisPresenceStore.claimExpired` as the sweeper calls it, baseline = `EXISTS` on every known device.',
    '- Overload: devices announce a 2 s interval (5 s TTL, swept every 500 ms); the sustained rate is what one gateway process acks per second while sent well above it; then heartbeats go at twice that, every device still beating within its interval. Gateway only: the baseline has no presence grace to test.',
    '- Flood: one socket on a load generator of its own sends unknown events, malformed heartbeats and stray acks as fast as its connection takes them, reconnecting whenever it is ended; the other devices heartbeat at a fixed rate; gateway at the default SOCKET_EVENTS_PER_SECOND (10), the baseline has no event budget.',
    '- Crash: 2 gateway processes on one Redis, the devices on one of them beat once and it is killed (SIGKILL); the devices do not reconnect. Each `device.offline {instance_lost}` is read back through `GET /v1/events` from the survivor; its record time is its log id\'s time, its last heartbeat its `lastSeenAt`. Gateway only.',
    '- Webhooks: one gateway process with WEBHOOK_URL = an HTTP receiver in the bench process (answers 204, verifies every 50th signature); events are `notification.expired` recorded by POSTs with ttl 0 to offline devices. Rate: a backlog recorded at once, from the first POST to the last event received; latency: from the event `timestamp` to the receiver, at a steady rate.',
    `- Several instances: ${results.scenarios.instances?.reason ?? 'the same devices and heartbeat rates against 1 gateway process, then 2 on the same Redis (devices split half and half); CPU is both processes summed. Baseline "n/a": there is no multi-instance baseline'}.`,
  ];
  if (results.errors?.length) lines.push('', '## Errors', ...results.errors.map((e) => `- ${e}`));
  return lines.join('\n') + '\n';
}

export function charts(results) {
  const c = results.scenarios.connections;
  const h = results.scenarios.heartbeats;
  const out = {};
  if (c?.gateway?.points && c?.baseline?.points) {
    const pts = (r) => [[0, r.idle.rssMb], ...r.points.map((p) => [p.devices, p.rssMb]), ...(r.max?.held ? [[r.max.held, r.max.rssMb]] : [])];
    out.rss = lineChart({
      title: 'Server RSS vs connected devices',
      xLabel: 'connected devices',
      yLabel: 'RSS after GC (MB)',
      caption: `${results.meta.date}, ${results.meta.mode} run; idle devices, websocket transport`,
      series: ['gateway', 'baseline'].map((k) => ({ name: k, color: COLORS[k], points: pts(c[k]) })),
    });
  }
  if (h?.gateway?.levels && h?.baseline?.levels) {
    out.cpu = lineChart({
      title: `Server CPU vs heartbeat rate (${h.gateway.devices} devices connected)`,
      xLabel: 'heartbeats per second (achieved)',
      yLabel: 'server CPU (% of one core)',
      caption: `${results.meta.date}, ${results.meta.mode} run; points in order of the target rate; Redis CPU not included; target: ${TARGETS.heartbeatCpuRatio}x the baseline`,
      series: [
        ...['gateway', 'baseline'].map((k) => ({
          name: k,
          color: COLORS[k],
          ordered: true,
          points: h[k].levels.map((l) =>
            saturated(l) ? [l.achievedPerSecond, l.serverCpuPct, `saturated: ${l.targetPerSecond / 1000}k/s sent`] : [l.achievedPerSecond, l.serverCpuPct],
          ),
        })),
        {
          name: `target: ${TARGETS.heartbeatCpuRatio}x the baseline`,
          color: COLORS.target,
          dashed: true,
          ordered: true,
          points: h.baseline.levels.filter((l) => !saturated(l)).map((l) => [l.achievedPerSecond, l.serverCpuPct * TARGETS.heartbeatCpuRatio]),
        },
      ],
    });
  }
  if (h?.gateway?.levels && h?.baseline?.levels) {
    // The target's reference: the durable baseline when the run has one.
    const durable = Boolean(h.durable?.levels);
    const ref = durable ? 'durable' : 'baseline';
    const targetName = `target: ${TARGETS.heartbeatRedisRatio}x the ${durable ? 'durable ' : ''}baseline`;
    out.hbRedis = lineChart({
      title: `Redis CPU vs heartbeat rate (${h.gateway.devices} devices connected)`,
      xLabel: 'heartbeats per second (achieved)',
      yLabel: 'Redis CPU (% of one core)',
      caption: `${results.meta.date}, ${results.meta.mode} run; points in order of the target rate; ${targetName}`,
      series: [
        ...['gateway', 'baseline', ...(durable ? ['durable'] : [])].map((k) => ({
          name: k === 'durable' ? 'durable baseline' : k,
          color: COLORS[k],
          ordered: true,
          points: h[k].levels.map((l) =>
            saturated(l) ? [l.achievedPerSecond, l.redisCpuPct, `saturated: ${l.targetPerSecond / 1000}k/s sent`] : [l.achievedPerSecond, l.redisCpuPct],
          ),
        })),
        {
          name: targetName,
          color: durable ? COLORS.durableTarget : COLORS.target,
          dashed: true,
          ordered: true,
          points: h[ref].levels.map((l) => [l.achievedPerSecond, l.redisCpuPct * TARGETS.heartbeatRedisRatio]),
        },
      ],
    });
  }
  Object.assign(out, pushCharts(results), fanoutChart(results));
  return out;
}

/** The push cost curve of one server: [{ rate, point }] for one device, ascending; the overload point apart. */
function pushCurve(p) {
  const curve = Object.entries(p)
    .filter(([k, v]) => (k === 'oneDevice' || k.startsWith('oneDeviceAt')) && v?.latencyMs)
    .map(([, v]) => v)
    .sort((a, b) => a.ratePerSecond - b.ratePerSecond);
  return { curve, overload: p.overload?.latencyMs ? p.overload : undefined };
}

const overloadNote = (o) => `${o.ratePerSecond / 1000}k/s from ${o.connections} connections: ${o.shedPct} % shed`;

/** CPU per POST and push p99 against the POST rate (one device), gateway vs baseline, with the targets. */
function pushCharts(results) {
  const p = results.scenarios.push;
  if (!p?.gateway?.oneDevice || !p?.baseline?.oneDevice) return {};
  const g = pushCurve(p.gateway);
  const b = pushCurve(p.baseline);
  const d = p.durable?.oneDevice ? pushCurve(p.durable) : undefined;
  const when = `${results.meta.date}, ${results.meta.mode} run`;
  const series = (pick, withOverload) =>
    [
      ['gateway', g],
      ['baseline', b],
      ...(d ? [['durable', d]] : []),
    ].map(([k, c]) => ({
      name: k === 'durable' ? 'durable baseline' : k,
      color: COLORS[k],
      points: [
        ...c.curve.map((v) => [v.ratePerSecond, pick(v)]),
        ...(withOverload && c.overload ? [[c.overload.ratePerSecond, pick(c.overload), overloadNote(c.overload)]] : []),
      ],
    }));
  const rates = [...g.curve, ...(g.overload ? [g.overload] : [])].map((v) => v.ratePerSecond);
  const xMax = Math.max(...rates);
  return {
    postCpu: lineChart({
      title: 'Server CPU per POST vs POST rate (one device)',
      xLabel: 'POSTs per second sent',
      yLabel: 'server CPU per POST (ms)',
      caption: d
        ? `${when}; hollow point: past saturation (shed POSTs included); dashed: ${TARGETS.postCpuRatio}x each baseline`
        : `${when}; hollow point: past saturation (CPU per POST sent, shed ones included); target: ${TARGETS.postCpuRatio}x the baseline`,
      series: [
        ...series((v) => v.cpuMsPerPost, true),
        {
          name: `${TARGETS.postCpuRatio}x the bare baseline`,
          color: COLORS.target,
          dashed: true,
          points: b.curve.map((v) => [v.ratePerSecond, v.cpuMsPerPost * TARGETS.postCpuRatio]),
        },
        ...(d
          ? [
              {
                name: `target: ${TARGETS.postCpuRatio}x the durable baseline`,
                color: COLORS.durableTarget,
                dashed: true,
                points: d.curve.map((v) => [v.ratePerSecond, v.cpuMsPerPost * TARGETS.postCpuRatio]),
              },
            ]
          : []),
      ],
    }),
    postP99: lineChart({
      title: 'Push p99, POST sent -> device receipt, vs POST rate (one device)',
      xLabel: 'POSTs per second sent',
      yLabel: 'p99 of accepted POSTs (ms, log scale)',
      yLog: true,
      caption: `${when}; hollow point: past saturation, p99 of the POSTs answered 202; target: p99 under ${TARGETS.pushP99Ms} ms`,
      series: [
        ...series((v) => v.latencyMs.p99, true),
        { name: `target: ${TARGETS.pushP99Ms} ms`, color: COLORS.target, dashed: true, points: [[0, TARGETS.pushP99Ms], [xMax, TARGETS.pushP99Ms]] },
      ],
    }),
  };
}

/** Fan-out time (first and last receipt) against the audience, gateway vs baseline, with the targets. */
function fanoutChart(results) {
  const f = results.scenarios.fanout;
  if (!f?.gateway?.curve || !f?.baseline?.curve) return {};
  const xMax = Math.max(...f.gateway.curve.map((c) => c.devices));
  return {
    fanout: lineChart({
      title: 'Fan-out time vs audience (one POST to a topic)',
      xLabel: 'subscribed devices',
      yLabel: 'ms from the POST',
      caption: `${results.meta.date}, ${results.meta.mode} run; median of the rounds; targets: ${TARGETS.fanoutRatio}x the baseline's messages/s, first receipt within ${TARGETS.fanoutFirstMs} ms`,
      series: [
        { name: 'gateway: last receipt', color: COLORS.gateway, points: f.gateway.curve.map((c) => [c.devices, c.timeToLastMs]) },
        { name: 'baseline: last receipt', color: COLORS.baseline, points: f.baseline.curve.map((c) => [c.devices, c.timeToLastMs]) },
        {
          name: `target for the last: baseline / ${TARGETS.fanoutRatio}`,
          color: COLORS.target,
          dashed: true,
          points: f.baseline.curve.map((c) => [c.devices, c.timeToLastMs / TARGETS.fanoutRatio]),
        },
        { name: 'gateway: first receipt', color: COLORS.gatewayLight, points: f.gateway.curve.map((c) => [c.devices, c.timeToFirstMs]) },
        { name: 'baseline: first receipt', color: COLORS.baselineLight, points: f.baseline.curve.map((c) => [c.devices, c.timeToFirstMs]) },
        { name: `target for the first: ${TARGETS.fanoutFirstMs} ms`, color: '#8c959f', dashed: true, points: [[0, TARGETS.fanoutFirstMs], [xMax, TARGETS.fanoutFirstMs]] },
      ],
    }),
  };
}
