// fan-out: one push that reaches N devices. Topics cannot be published over REST yet, so the nearest
// thing is used: one user with N devices and `userIds: [thatUser]` (one POST, N emits). Measured from
// just before the POST is written (bench process) to the last device receipt (load generators; all
// clocks are the host's, read with sub-millisecond resolution).
import { connectDevices, disconnectAll, epoch, profiled } from '../lib/harness.mjs';
import { sleep } from '../lib/procs.mjs';
import { median, round } from '../lib/stats.mjs';

export const name = 'fanout';
const USER = 'fan-user';

export async function run(h, server, p) {
  const conn = await connectDevices(h, server, { total: p.devices, idPrefix: 'f', userId: USER, concurrency: p.concurrency });
  if (conn.ok < p.devices) throw new Error(`${server.kind}: only ${conn.ok} of ${p.devices} devices connected: ${JSON.stringify(conn.errors)}`);
  h.log(`  ${server.kind}: ${conn.ok} devices of one user connected in ${Math.round(conn.ms)} ms`);
  await sleep(1_000);

  const rounds = [];
  const round_ = async (r) => {
    const res = await oneRound(h, server, p.devices, r);
    h.log(`  ${server.kind}: round ${r + 1}${r < p.warmupRounds ? ' (warm-up)' : ''}: ${res.received}/${p.devices} in ${res.timeToLastMs} ms (${res.messagesPerSecond}/s)`);
    await sleep(p.pauseMs);
    return res;
  };
  for (let r = 0; r < p.warmupRounds; r++) await round_(r);
  await profiled(h, server, 'fanout', async () => {
    for (let r = p.warmupRounds; r < p.warmupRounds + p.rounds; r++) rounds.push(await round_(r));
  });
  await disconnectAll(h);
  return {
    devices: p.devices,
    how: 'one POST with userIds: [a user with N devices] (topics are not publishable over REST yet)',
    rounds,
    timeToLastMs: round(median(rounds.map((r) => r.timeToLastMs)), 1),
    timeToFirstMs: round(median(rounds.map((r) => r.timeToFirstMs)), 1),
    messagesPerSecond: round(median(rounds.map((r) => r.messagesPerSecond)), 0),
    postRoundTripMs: round(median(rounds.map((r) => r.postRoundTripMs)), 1),
    allReceived: rounds.every((r) => r.received === p.devices),
  };
}

async function oneRound(h, server, devices, round_) {
  await Promise.all(h.loadgens.map((lg) => lg.call('resetReceipts')));
  const body = JSON.stringify({ userIds: [USER], data: { round: round_, t: epoch() } });
  const t0 = epoch();
  const res = await fetch(`${server.url}${server.push.path}`, {
    method: 'POST',
    headers: { ...server.push.headers, 'content-type': 'application/json' },
    body,
  });
  const answer = await res.json();
  const postRoundTripMs = epoch() - t0;
  if (res.status !== 202) throw new Error(`${server.kind}: fan-out POST answered ${res.status}: ${JSON.stringify(answer)}`);
  const deadline = Date.now() + 30_000;
  let got = [];
  while (Date.now() < deadline) {
    await sleep(50);
    got = await Promise.all(h.loadgens.map((lg) => lg.call('receipts')));
    if (got.reduce((n, g) => n + g.count, 0) >= devices) break;
  }
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
  };
}
