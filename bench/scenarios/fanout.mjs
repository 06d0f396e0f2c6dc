// fan-out: one push that reaches N devices. N devices of one user connect (token claim
// `topics: ['bench.*']`) and subscribe to `bench.fanout` after `ready`; then rounds of one
// `POST { topic: 'bench.fanout' }` each (the headline figures), then, on the same sockets, rounds of
// one `POST { userIds: [thatUser] }` (the `user` variant). Measured from just before the POST is
// written (bench process) to the last device receipt (load generators; all clocks are the host's,
// read with sub-millisecond resolution).
//
// The servers run side by side (`runPaired`): each holds its own N devices, and their rounds
// alternate (gateway, baseline, then baseline, gateway, ...), so what the machine does meanwhile
// falls on both alike. Run one after the other, the same build's topic ratio read 0.60-1.02x
// across runs of one afternoon: a round's time follows the CPU of the server, Redis and the load
// generators together on 2 shared cores, and that drifted between the two servers' phases.
//
// With `--set fanout.durable=1`, a third server, `durable` (the baseline with the contract's
// Redis writes, as in the push scenario: one script call storing the notification and an inbox
// entry per device before the emits, one call per ack recording the receipt), runs the headline
// rounds too: the gateway's Redis work next to the same writes done the simplest way. It joins at
// the headline's step only (the curve is gateway against bare baseline). Not in a full run: its
// devices, connected beside the others', slowed every server's rounds (10k topic: 586 ms for the
// gateway against 380-415 with two servers), the headline's included.
//
// The cost curve: with `audiences` set, the devices connect in steps (e.g. 1k, 5k, 10k, 19k: more
// devices join the same user and topic at each step) and each step gets `curveRounds` topic rounds;
// the headline (and the user variant) are measured at `devices`, which must be one of the steps.
import { connectDevices, delta, disconnectAll, epoch, profiled, snapshot } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'fanout';
export const kinds = (p) => (p.durable ? ['gateway', 'baseline', 'durable'] : ['gateway', 'baseline']);
const USER = 'fan-user';
export const TOPIC = 'bench.fanout';

/** `servers` in the run's order; returns each server's result by kind. */
export async function runPaired(h, servers, p) {
  const steps = [...new Set([...(p.audiences ?? []), p.devices])].sort((a, b) => a - b);
  // Device ids of the same length on each server (`fg0-12`, `fb0-12`), each held once.
  const sides = servers.map((server) => ({ server, prefix: `f${server.kind[0]}`, offsets: h.loadgens.map(() => 0), connected: 0, curve: [], headline: undefined }));
  for (const devices of steps) {
    const headline = devices === p.devices;
    const active = headline ? sides : sides.filter((side) => side.server.kind !== 'durable');
    for (const side of active) await grow(h, side, devices, p);
    await sleep(1_000);
    if (headline) {
      const topic = await variant(h, active, p, devices, 'topic', { topic: TOPIC }, p.rounds);
      const user = await variant(h, active, p, devices, 'user', { userIds: [USER] }, p.rounds);
      active.forEach((side, i) => {
        side.headline = { topic: topic[i], user: user[i] };
        if (side.server.kind !== 'durable') side.curve.push(point(devices, topic[i]));
      });
    } else {
      const topic = await variant(h, active, p, devices, `topic-${devices}`, { topic: TOPIC }, p.curveRounds ?? p.rounds);
      active.forEach((side, i) => side.curve.push(point(devices, topic[i])));
    }
  }
  await disconnectAll(h);
  return Object.fromEntries(
    sides.map((side) => [
      side.server.kind,
      {
        devices: p.devices,
        how: `one POST with topic: '${TOPIC}' (N subscribed devices); second row: one POST with userIds: [a user with the same N devices]; the servers side by side, rounds alternating`,
        ...side.headline.topic,
        user: side.headline.user,
        ...(side.server.kind === 'durable' ? {} : { curve: side.curve }),
      },
    ]),
  );
}

/** Connects the side's server up to `devices` devices and has all of them subscribe. */
async function grow(h, side, devices, p) {
  const { server } = side;
  const conn = await connectDevices(h, server, { total: devices - side.connected, idPrefix: side.prefix, userId: USER, concurrency: p.concurrency, offsets: side.offsets });
  side.connected += conn.ok;
  if (side.connected < devices) throw new Error(`${server.kind}: only ${side.connected} of ${devices} devices connected: ${JSON.stringify(conn.errors)}`);
  h.log(`  ${server.kind}: ${side.connected} devices of one user connected (${conn.ok} more in ${Math.round(conn.ms)} ms)`);
  // Every socket of this server subscribes again: the ones already subscribed get the same ack.
  const subs = await Promise.all(h.loadgens.map((lg) => lg.call('subscribe', { topics: [TOPIC], url: server.url, concurrency: p.concurrency })));
  const subscribed = subs.reduce((n, s) => n + s.ok, 0);
  if (subscribed < devices) throw new Error(`${server.kind}: only ${subscribed} of ${devices} devices subscribed: ${JSON.stringify(subs.map((s) => s.errors))}`);
  h.log(`  ${server.kind}: ${subscribed} devices subscribed to ${TOPIC}`);
}

const point = (devices, v) => ({ devices, timeToFirstMs: v.timeToFirstMs, timeToLastMs: v.timeToLastMs, messagesPerSecond: v.messagesPerSecond, allReceived: v.allReceived });

/** Rounds of one POST to `target`, the servers taking turns (the order flips every round); a summary per side. */
async function variant(h, sides, p, devices, label, target, rounds) {
  const done = new Map(sides.map((side) => [side, []]));
  const lap = async (r) => {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const { server } = side;
      const res = await oneRound(h, server, devices, r, target);
      h.log(`  ${server.kind}: ${label} round ${r + 1}${r < p.warmupRounds ? ' (warm-up)' : ''}: ${res.received}/${devices} in ${res.timeToLastMs} ms (${res.messagesPerSecond}/s; CPU-ms server ${res.serverCpuMs}, Redis ${res.redisCpuMs}, load generators ${res.loadgenCpuMs})`);
      if (r >= p.warmupRounds) done.get(side).push(res);
      await sleep(p.pauseMs);
    }
  };
  for (let r = 0; r < p.warmupRounds; r++) await lap(r);
  // With --cpu-prof each server's profile covers the measured rounds (its own and, idle, the others').
  const measured = async () => {
    for (let r = p.warmupRounds; r < p.warmupRounds + rounds; r++) await lap(r);
  };
  await sides.reduceRight((inner, side) => () => profiled(h, side.server, `fanout-${label}`, inner), measured)();
  return sides.map((side) => summary(done.get(side), devices));
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
