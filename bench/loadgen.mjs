// A load-generating client process, forked by bench/run.mjs (IPC, advanced serialization). It holds
// up to a few thousand Socket.IO device sockets (each costs a file descriptor here too), sends
// heartbeats at a given rate, acks notifications and records when they arrive, and can POST
// notifications at a fixed rate. Every command is bounded in time; the process exits when its parent
// goes away or after BENCH_LOADGEN_MAX_MS.
import { createSecretKey } from 'node:crypto';
import http from 'node:http';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const MAX_LIFETIME_MS = Number(process.env.BENCH_LOADGEN_MAX_MS ?? 20 * 60_000);
setTimeout(() => process.exit(3), MAX_LIFETIME_MS).unref();
process.on('disconnect', () => process.exit(0));

/** Epoch milliseconds with sub-millisecond resolution, comparable between processes on this host. */
const epoch = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @type {{ socket: import('socket.io-client').Socket, deviceId: string, userId: string }[]} */
let devices = [];
const dropped = {};
let receipts = newReceipts();

function newReceipts() {
  return { count: 0, first: Infinity, last: -Infinity, latencies: [], sentAts: [] };
}

function onNotification(payload, ack) {
  const at = epoch();
  if (typeof ack === 'function') ack();
  receipts.count++;
  if (at < receipts.first) receipts.first = at;
  if (at > receipts.last) receipts.last = at;
  const sentAt = payload?.data?.t;
  if (typeof sentAt === 'number') {
    receipts.latencies.push(at - sentAt);
    receipts.sentAts.push(sentAt);
  }
}

const keys = new Map();
/** The same token for both servers: each verifies it at the handshake. */
function authFor(_kind, secret, deviceId, userId) {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  // A KeyObject made once: given a string, jsonwebtoken parses the key material on every call.
  if (!keys.has(secret)) keys.set(secret, createSecretKey(Buffer.from(secret)));
  // topics: what the fan-out scenario subscribes to (`bench.fanout`).
  return { token: jwt.sign({ sub: userId, deviceId, exp, topics: ['bench.*'] }, keys.get(secret), { algorithm: 'HS256' }) };
}

function connectOne(url, auth, deviceId, userId, timeoutMs) {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      auth,
    });
    socket.on('notification', onNotification);
    let settled = false;
    const done = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        socket.removeAllListeners();
        socket.disconnect();
        resolve(error);
        return;
      }
      const device = { socket, deviceId, userId, url };
      devices.push(device);
      socket.on('disconnect', (reason) => {
        if (reason === 'io client disconnect') return;
        dropped[reason] = (dropped[reason] ?? 0) + 1;
      });
      resolve(null);
    };
    const timer = setTimeout(() => done('timeout waiting for ready'), timeoutMs);
    socket.once('ready', () => done(null));
    socket.once('connect_error', (err) => done(`connect_error: ${err.message}`));
    socket.once('disconnect', (reason) => done(`disconnect before ready: ${reason}`));
  });
}

const handlers = {
  /** Connects devices `${idPrefix}${from + i}` for i < count, `concurrency` handshakes at a time. */
  async connect({ url, kind, secret, idPrefix, from = 0, count, userId, concurrency = 50, timeoutMs = 15_000, deadlineMs = 120_000 }) {
    const started = performance.now();
    const deadline = started + deadlineMs;
    let next = 0;
    let ok = 0;
    const errors = {};
    const worker = async () => {
      while (next < count && performance.now() < deadline) {
        const i = from + next++;
        const deviceId = `${idPrefix}${i}`;
        const uid = userId ?? `u-${deviceId}`;
        const error = await connectOne(url, authFor(kind, secret, deviceId, uid), deviceId, uid, timeoutMs);
        if (error) errors[error] = (errors[error] ?? 0) + 1;
        else ok++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
    return { ok, failed: count - ok, errors, ms: performance.now() - started, held: devices.length };
  },

  async status() {
    const connected = devices.filter((d) => d.socket.connected).length;
    const byUrl = {};
    for (const d of devices) if (d.socket.connected) byUrl[d.url] = (byUrl[d.url] ?? 0) + 1;
    return { held: devices.length, connected, dropped, byUrl };
  },

  /** Every held socket (of the server at `url`, if given) emits `subscribe { topics }` and waits for its ack, `concurrency` at a time. */
  async subscribe({ topics, url, concurrency = 50, timeoutMs = 10_000 }) {
    const list = url ? devices.filter((d) => d.url === url) : devices;
    let next = 0;
    let ok = 0;
    const errors = {};
    const one = (d) =>
      new Promise((resolve) => {
        d.socket.timeout(timeoutMs).emit('subscribe', { topics }, (err, ack) => {
          if (err) errors.timeout = (errors.timeout ?? 0) + 1;
          else if (ack?.ok) ok++;
          else errors[ack?.error?.code ?? 'bad ack'] = (errors[ack?.error?.code ?? 'bad ack'] ?? 0) + 1;
          resolve();
        });
      });
    const worker = async () => {
      while (next < list.length) await one(list[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
    return { ok, failed: list.length - ok, errors };
  },

  /** Closes every held socket, or (`url` given) those of the server at `url`, keeping the others and the drop counts. */
  async disconnect({ url } = {}) {
    const closing = url ? devices.filter((d) => d.url === url) : devices;
    for (const d of closing) {
      d.socket.removeAllListeners();
      d.socket.disconnect();
    }
    devices = url ? devices.filter((d) => d.url !== url) : [];
    if (!url) for (const k of Object.keys(dropped)) delete dropped[k];
    await sleep(50);
    return { closed: closing.length };
  },

  /**
   * Sends heartbeats round-robin over this process's sockets at `rate` per second for
   * warmupMs + durationMs; ack latencies and counts are kept for the measured part only.
   */
  async heartbeats({ rate, warmupMs, durationMs, interval, drainMs = 3_000 }) {
    if (devices.length === 0 || rate <= 0) return { sent: 0, acked: 0, errors: 0, latencies: new Float64Array(0) };
    const latencies = [];
    let sent = 0;
    let acked = 0;
    let errors = 0;
    const errorCodes = {};
    let cursor = 0;
    let issued = 0;
    const start = performance.now();
    const measureFrom = start + warmupMs;
    const end = measureFrom + durationMs;
    let outstanding = 0;
    const beat = () => {
      if (devices.length === 0) return;
      const d = devices[cursor++ % devices.length];
      const t0 = performance.now();
      const measured = t0 >= measureFrom && t0 < end;
      if (measured) sent++;
      outstanding++;
      d.socket.emit('heartbeat', { interval }, (ack) => {
        outstanding--;
        const t1 = performance.now();
        if (!measured) return;
        if (ack?.ok) {
          acked++;
          latencies.push(t1 - t0);
        } else {
          errors++;
          const code = String(ack?.error?.code ?? ack?.code ?? 'no_ack_body');
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        }
      });
    };
    while (true) {
      const now = performance.now();
      if (now >= end) break;
      const due = Math.floor(((now - start) * rate) / 1000) - issued;
      for (let i = 0; i < due; i++) beat();
      issued += Math.max(due, 0);
      await sleep(2);
    }
    const drainUntil = performance.now() + drainMs;
    while (outstanding > 0 && performance.now() < drainUntil) await sleep(10);
    return { sent, acked, errors, errorCodes, lost: outstanding, latencies: Float64Array.from(latencies) };
  },

  resetReceipts() {
    receipts = newReceipts();
    return { ok: true };
  },

  receipts({ withLatencies = false } = {}) {
    const { count, first, last, latencies } = receipts;
    return { count, first, last, latencies: withLatencies ? Float64Array.from(latencies) : undefined };
  },

  /**
   * POSTs `rate` notifications per second for durationMs, each to the target this process holds,
   * with `data.t` = send time, and measures POST-sent -> device-receipt on the same clock. A POST
   * answered 503 (shed) is counted and not retried (open loop); receipts are expected for the 202s
   * only. `maxSockets` bounds the connections the poster opens (a few backends, or thousands).
   */
  async push({ url, path, headers, target, rate, durationMs, expectedOnline, maxInFlight = 256, maxSockets = 64, prime = false, drainMs = 5_000 }) {
    receipts = newReceipts();
    const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    const { hostname, port } = new URL(url);
    // prime: open every connection first (maxSockets GET /health/live at once, before the window),
    // so the window measures a sustained rate and not a storm of new connections (which overflows
    // the listen backlog while the server is busy; the kernel retries a dropped SYN after 1 s, 3 s).
    if (prime) {
      const get = () =>
        new Promise((resolve) => {
          const req = http.request({ agent, hostname, port, path: '/health/live', method: 'GET' }, (res) => res.resume().on('end', resolve));
          req.on('error', resolve);
          req.end();
        });
      await Promise.all(Array.from({ length: maxSockets }, get));
    }
    const rtts = [];
    const shedRtts = [];
    const lags = [];
    const status = {};
    const retryAfter = {};
    const shedBy = {};
    let onlineMismatch = 0;
    let inFlight = 0;
    let skipped = 0;
    let issued = 0;
    let accepted = 0;
    const post = (scheduledAt) => {
      if (inFlight >= maxInFlight) {
        skipped++;
        return;
      }
      inFlight++;
      const t = epoch();
      const sentAt = performance.now();
      lags.push(sentAt - scheduledAt);
      const body = JSON.stringify({ ...target, data: { t, seq: issued } });
      const req = http.request(
        { agent, hostname, port, path, method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            inFlight--;
            status[res.statusCode] = (status[res.statusCode] ?? 0) + 1;
            if (res.statusCode === 503) {
              shedRtts.push(performance.now() - sentAt);
              const ra = res.headers['retry-after'] ?? 'none';
              retryAfter[ra] = (retryAfter[ra] ?? 0) + 1;
              // Which signal shed it, from the gateway's message ("... ms behind" or "requests took ...").
              let why = 'other';
              try {
                const message = String(JSON.parse(Buffer.concat(chunks).toString()).message);
                why = /behind/.test(message) ? 'event loop behind' : /took/.test(message) ? 'standing queue' : 'other';
              } catch {
                // not the JSON error shape
              }
              shedBy[why] = (shedBy[why] ?? 0) + 1;
              return;
            }
            rtts.push(performance.now() - sentAt);
            if (res.statusCode === 202) accepted++;
            try {
              if (JSON.parse(Buffer.concat(chunks).toString()).online !== expectedOnline) onlineMismatch++;
            } catch {
              onlineMismatch++;
            }
          });
        },
      );
      req.on('error', (err) => {
        inFlight--;
        status[err.code ?? 'error'] = (status[err.code ?? 'error'] ?? 0) + 1;
      });
      req.end(body);
    };
    const start = performance.now();
    const end = start + durationMs;
    while (true) {
      const now = performance.now();
      if (now >= end) break;
      const due = Math.floor(((now - start) * rate) / 1000) - issued;
      for (let i = 0; i < due; i++) post(start + ((issued + i) * 1000) / rate);
      issued += Math.max(due, 0);
      await sleep(1);
    }
    const drainUntil = performance.now() + drainMs;
    while (inFlight > 0 && performance.now() < drainUntil) await sleep(10);
    const expectedReceipts = accepted * expectedOnline;
    while (receipts.count < expectedReceipts && performance.now() < drainUntil) await sleep(10);
    agent.destroy();
    return {
      issued,
      skipped,
      accepted,
      unanswered: inFlight,
      status,
      retryAfter,
      shedBy,
      onlineMismatch,
      receipts: receipts.count,
      expectedReceipts,
      latencies: Float64Array.from(receipts.latencies),
      sentAts: Float64Array.from(receipts.sentAts),
      rtts: Float64Array.from(rtts),
      shedRtts: Float64Array.from(shedRtts),
      lags: Float64Array.from(lags),
    };
  },

  /**
   * One device flooding unpaced over a bare WebSocket (Engine.IO 4 / Socket.IO 5 by hand) for
   * durationMs: once its session is ready it sends `frames` round and round as fast as the
   * connection takes them (at most maxBuffered bytes queued here; yielding between batches so it
   * reads what it is sent, and checking every millisecond while the connection takes nothing), and when the server ends or drops it, it connects again at once, as a
   * hostile client would. Counts frames sent, connections, and `session_ended` reasons.
   */
  async flood({ url, kind, secret, deviceId, userId, frames, durationMs, maxBuffered = 1 << 20 }) {
    const stats = { sent: 0, connections: 0, sessionsReady: 0, ended: {}, closedBeforeReady: 0, repliesReceived: 0 };
    const until = performance.now() + durationMs;
    const auth = authFor(kind, secret, deviceId, userId);
    while (performance.now() < until) {
      stats.connections++;
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
      let ready = false;
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.on('error', () => {});
      ws.on('message', (data) => {
        const frame = data.toString();
        if (frame === '2') return ws.send('3');
        if (frame.startsWith('43')) stats.repliesReceived++;
        else if (frame.startsWith('42["ready"')) ready = true;
        else if (frame.startsWith('42["session_ended"')) {
          const reason = /"reason":"([a-z_]+)"/.exec(frame)?.[1] ?? 'unknown';
          stats.ended[reason] = (stats.ended[reason] ?? 0) + 1;
        }
      });
      const opened = await Promise.race([new Promise((resolve) => ws.once('open', () => resolve(true))), closed.then(() => false)]);
      if (!opened) {
        await sleep(10);
        continue;
      }
      ws.send(`40${JSON.stringify(auth)}`);
      while (!ready && ws.readyState === WebSocket.OPEN && performance.now() < until) await sleep(2);
      if (!ready) {
        stats.closedBeforeReady++;
        ws.terminate();
        continue;
      }
      stats.sessionsReady++;
      while (ws.readyState === WebSocket.OPEN && performance.now() < until) {
        for (let i = 0; i < 500 && ws.bufferedAmount < maxBuffered; i++) ws.send(frames[stats.sent++ % frames.length]);
        // Full: wait for the connection to take more (a millisecond, not a busy loop that would
        // take a core from the processes under test); otherwise only yield to read what came in.
        if (ws.bufferedAmount >= maxBuffered) await sleep(1);
        else await new Promise((resolve) => setImmediate(resolve));
      }
      ws.terminate();
      await closed;
    }
    return stats;
  },

  exit() {
    setImmediate(() => process.exit(0));
    return { ok: true };
  },
};

process.on('message', (msg) => {
  const handler = handlers[msg.cmd];
  Promise.resolve()
    .then(() => {
      if (!handler) throw new Error(`unknown command ${msg.cmd}`);
      return handler(msg.args ?? {});
    })
    .then(
      (result) => process.send({ id: msg.id, ok: true, result }),
      (err) => process.send({ id: msg.id, ok: false, error: err?.stack ?? String(err) }),
    );
});

process.send({ ready: true, pid: process.pid });
