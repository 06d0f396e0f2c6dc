// fan-out: one push that reaches N devices. N devices of one user connect (token claim
// `topics: ['bench.*']`) and subscribe to `bench.fanout` after `ready`; then rounds of one
// `POST { topic: 'bench.fanout' }` each (the headline figures), then, on the same sockets, rounds of
// one `POST { userIds: [thatUser] }` (the `user` variant). Measured from just before the POST is
// written (bench process) to the last device receipt (load generators; all clocks are the host's,
// read with sub-millisecond resolution).
//
// The cost curve: with `audiences` set, the devices connect in steps (e.g. 1k, 5k, 10k, 19k: more
// devices join the same user and topic at each step) and each step gets `curveRounds` topic rounds;
// the headline (and the user variant) are measured at `devices`, which must be one of the steps.
import { connectDevices, delta, disconnectAll, epoch, profiled, snapshot } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'fanout';
const USER = 'fan-user';
export const TOPIC = 'bench.fanout';

export async function run(h, server, p) {
  const steps = [...new Set([...(p.audiences ?? []), p.devices])].sort((a, b) => a - b);
  const offsets = h.loadgens.map(() => 0);
  let connected = 0;
  let headline;
  const curve = [];
  for (const devices of steps) {
    const conn = await connectDevices(h, server, { total: devices - connected, idPrefix: 'f', userId: USER, concurrency: p.concurrency, offsets });
    connected += conn.ok;
    if (connected < devices) throw new Error(`${server.kind}: only ${connected} of ${devices} devices connected: ${JSON.stringify(conn.errors)}`);
    h.log(`  ${server.kind}: ${connected} devices of one user connected (${conn.ok} more in ${Math.round(conn.ms)} ms)`);
    // Every held socket subscribes again: the ones already subscribed get the same ack.
    const subs = await Promise.all(h.loadgens.map((lg) => lg.call('subscribe', { topics: [TOPIC], concurrency: p.concurrency })));
    const subscribed = subs.reduce((n, s) => n + s.ok, 0);
    if (subscribed < devices) throw new Error(`${server.kind}: only ${subscribed} of ${devices} devices subscribed: ${JSON.stringify(subs.map((s) => s.errors))}`);
    h.log(`  ${server.kind}: ${subscribed} devices subscribed to ${TOPIC}`);
    await sleep(1_000);
    if (devices === p.devices) {
      const topic = await variant(h, server, p, devices, 'topic', { topic: TOPIC }, p.rounds);
      const user = await variant(h, server, p, devices, 'user', { userIds: [USER] }, p.rounds);
      headline = { topic, user };
      curve.push(point(devices, topic));
    } else {
      curve.push(point(devices, await variant(h, server, p, devices, `topic-${devices}`, { topic: TOPIC }, p.curveRounds ?? p.rounds)));
    }
  }
  await disconnectAll(h);
  return {
    devices: p.devices,
    how: `one POST with topic: '${TOPIC}' (N subscribed devices); second row: one POST with userIds: [a user with the same N devices]`,
    ...headline.topic,
    user: headline.user,
    curve,
  };
}

const point = (devices, v) => ({ devices, timeToFirstMs: v.timeToFirstMs, timeToLastMs: v.timeToLastMs, messagesPerSecond: v.messagesPerSecond, allReceived: v.allReceived });

async function variant(h, server, p, devices, label, target, rounds) {
  const done = [];
  const round_ = async (r) => {
    const res = await oneRound(h, server, devices, r, target);
    h.log(`  ${server.kind}: ${label} round ${r + 1}${r < p.warmupRounds ? ' (warm-up)' : ''}: ${res.received}/${devices} in ${res.timeToLastMs} ms (${res.messagesPerSecond}/s; CPU-ms server ${res.serverCpuMs}, Redis ${res.redisCpuMs}, load generators ${res.loadgenCpuMs})`);
    await sleep(p.pauseMs);
    return res;
  };
  for (let r = 0; r < p.warmupRounds; r++) await round_(r);
  await profiled(h, server, `fanout-${label}`, async () => {
    for (let r = p.warmupRounds; r < p.warmupRounds + rounds; r++) done.push(await round_(r));
  });
  return summary(done, devices);
}

function summary(rounds, devices) {
  return {
    rounds,
    timeToLastMs: round(median(rounds.map((r) => r.timeToLastMs)), 1),
    timeToFirstMs: round(median(rounds.map((r) => r.timeToFirstMs)), 1),
    messagesPerSecond: round(median(rounds.map((r) => r.messagesPerSecond)), 0),
    postRoundTripMs: round(median(rounds.map((r) => r.postRoundTripMs)), 1),
    serverCpuMs: round(median(rounds.map((r) => r.serverCpuMs)), 1),
    redisCpuMs: round(median(rounds.map((r) => r.redisCpuMs)), 1),
    loadgenCpuMs: round(median(rounds.map((r) => r.loadgenCpuMs)), 1),
    allReceived: rounds.every((r) => r.received === devices),
  };
}

async function oneRound(h, server, devices, round_, target) {
  await Promise.all(h.loadgens.map((lg) => lg.call('resetReceipts')));
  // A 503 (the gateway sheds while its event loop is over LOAD_SHED_DELAY_MS behind, which the
  // previous round of a large fan-out can cause on a busy machine) is retried after Retry-After,
  // as a backend would; the round is timed from the POST that was accepted.
  let res;
  let answer;
  let t0;
  let shedRetries = 0;
  let before;
  for (;;) {
    before = await snapshot(h, server);
    const body = JSON.stringify({ ...target, data: { round: round_, t: epoch() } });
    t0 = epoch();
    res = await fetch(`${server.url}${server.push.path}`, {
      method: 'POST',
      headers: { ...server.push.headers, 'content-type': 'application/json' },
      body,
    });
    answer = await res.json();
    if (res.status !== 503 || shedRetries >= 10) break;
    shedRetries++;
    await sleep(1000 * Number(res.headers.get('retry-after') ?? 1));
  }
  const postRoundTripMs = epoch() - t0;
  if (res.status !== 202) throw new Error(`${server.kind}: fan-out POST answered ${res.status}: ${JSON.stringify(answer)}`);
  const deadline = Date.now() + 30_000;
  let got = [];
  while (Date.now() < deadline) {
    await sleep(50);
    got = await Promise.all(h.loadgens.map((lg) => lg.call('receipts')));
    if (got.reduce((n, g) => n + g.count, 0) >= devices) break;
  }
  const cpu = delta(before, await snapshot(h, server));
  const received = got.reduce((n, g) => n + g.count, 0);
  const last = Math.max(...got.map((g) => g.last));
  const first = Math.min(...got.map((g) => g.first));
  const timeToLastMs = last - t0;
  return {
    online: answer.online,
    received,
    timeToFirstMs: round(first - t0, 1),
    timeToLastMs: round(timeToLastMs, 1),
    messagesPerSecond: round((received / timeToLastMs) * 1000, 0),
    postRoundTripMs: round(postRoundTripMs, 1),
    serverCpuMs: round(cpu.serverCpuMs, 1),
    redisCpuMs: round(cpu.redisCpuMs, 1),
    loadgenCpuMs: round(cpu.loadgenCpuMs, 1),
    ...(shedRetries ? { shedRetries } : {}),
  };
}
