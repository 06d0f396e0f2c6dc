// The benchmark's baseline: what one would write by hand instead of the gateway, in the simplest
// correct way. A bare Socket.IO 4.8 server with ioredis, no NestJS: it verifies the device JWT
// (HS256, `sub` = user, `deviceId`) at the handshake as the gateway does, keeps presence as
// `SET presence:<id> <sid> PX <ttl>` per heartbeat, DEL on disconnect, `subscribe { topics }`
// joining `topic:<name>` rooms, and a tiny `POST /push` (`deviceIds`, `userIds`, `topic`) that emits
// `notification` to every target socket with its own ack (a receipt per device, as the gateway
// counts them; a room broadcast would only report how many answered).
//
// It uses the same Socket.IO engine options as the gateway where they change the cost of a
// connection (websocket accepted, ping stretched to HEARTBEAT_MAX_MS, 64 KiB frames) and the same
// ioredis auto-pipelining, so the comparison is about what the gateway adds, not about tuning.
//
// With BASELINE_DURABLE=1 (the bench's `durable` server in the push scenario, bench/post-ab.mjs
// `baseline-durable`) its POST also does, in the simplest way, the Redis work the gateway's
// contract asks of a publish: one script call that counts a rate limit shared by instances and
// stores the notification and an inbox entry per target device (named, or reached through a user
// or topic) before the emit and the 202, and one call per ack that records the device's receipt.
// A measure of what those round trips cost by themselves, outside the gateway's code. Its
// heartbeat, likewise, is one script call that does what the contract asks of one in Redis: it
// extends the presence key only while the key still names this socket's session (a socket its
// device has since replaced must not keep the newer session alive), and records the heartbeat's
// time and the new expiry in the device's hash, which outlives the key: the time a device was
// last seen is what `device.offline` and GET /v1/devices report once its presence ran out. The
// connect writes the session into that hash as well.
//
// Env: PORT, HOST, REDIS_URL, REDIS_PREFIX, HEARTBEAT_INTERVAL_MS, HEARTBEAT_MIN_MS,
// HEARTBEAT_MAX_MS, ACK_TIMEOUT_MS, DEVICE_JWT_SECRET, BASELINE_DURABLE.
import { createSecretKey, randomUUID } from 'node:crypto';
import http from 'node:http';
import jwt from 'jsonwebtoken';
import Redis from 'ioredis';
import { Server } from 'socket.io';

const env = process.env;
const port = Number(env.PORT ?? 3100);
const host = env.HOST ?? '127.0.0.1';
const prefix = env.REDIS_PREFIX ?? 'baseline:';
const defaultInterval = Number(env.HEARTBEAT_INTERVAL_MS ?? 25_000);
const minInterval = Number(env.HEARTBEAT_MIN_MS ?? Math.min(5_000, defaultInterval));
const maxInterval = Number(env.HEARTBEAT_MAX_MS ?? Math.max(300_000, defaultInterval));
const ackTimeoutMs = Number(env.ACK_TIMEOUT_MS ?? 10_000);
const BODY_LIMIT = 256 * 1024;
if (!env.DEVICE_JWT_SECRET) throw new Error('DEVICE_JWT_SECRET is required');
// A KeyObject made once, as the gateway does: given a string, jsonwebtoken parses it on every verify.
const jwtKey = createSecretKey(Buffer.from(env.DEVICE_JWT_SECRET));

const clamp = (ms) => Math.min(maxInterval, Math.max(minInterval, ms));
const ttlFor = (interval) => Math.round(interval * 2.5);
const presenceKey = (deviceId) => `${prefix}presence:${deviceId}`;
const deviceKey = (deviceId) => `${prefix}device:${deviceId}`;

const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
  lazyConnect: true,
});
redis.on('error', (err) => process.stderr.write(`redis: ${err.message}\n`));

const durable = env.BASELINE_DURABLE === '1';
// KEYS: rate counter, notification hash, then one inbox per target; ARGV: id, payload, now, rate
// limit, window ms, ttl ms, then the target device ids. 0 when over the limit (nothing written).
redis.defineCommand('baselineStore', {
  lua: `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
if count > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[2], 'payload', ARGV[2], 'createdAt', ARGV[3])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[6])
  redis.call('HSET', KEYS[2], 't:' .. ARGV[6 + i - 2], 'pending')
end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1`,
});
// KEYS: notification hash, the device's inbox; ARGV: id, device id, now.
redis.defineCommand('baselineReceipt', {
  numberOfKeys: 2,
  lua: `
redis.call('HSET', KEYS[1], 't:' .. ARGV[2], 'delivered:' .. ARGV[3])
return redis.call('ZREM', KEYS[2], ARGV[1])`,
});

// KEYS: presence key, device hash; ARGV: session id, ttl ms, now, expires at. 0 when the key names
// another session or none (this session is over: it is not brought back).
redis.defineCommand('baselineBeat', {
  numberOfKeys: 2,
  lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'lastHeartbeatAt', ARGV[3], 'expiresAt', ARGV[4])
return 1`,
});
// KEYS: presence key, device hash; ARGV: session id, ttl ms, now, expires at, user id.
redis.defineCommand('baselineConnect', {
  numberOfKeys: 2,
  lua: `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'sessionId', ARGV[1], 'userId', ARGV[5], 'connectedAt', ARGV[3], 'lastHeartbeatAt', ARGV[3], 'expiresAt', ARGV[4])
return 1`,
});

const counters = { heartbeats: 0, pushesSent: 0, pushesAcked: 0, pushesUnacked: 0 };

const httpServer = http.createServer((req, res) => {
  handleHttp(req, res).catch((err) => reply(res, 500, { error: err.message }));
});

const io = new Server(httpServer, {
  path: '/socket.io',
  pingInterval: maxInterval,
  pingTimeout: 20_000,
  maxHttpBufferSize: 64 * 1024,
});

io.use((socket, next) => {
  try {
    const claims = jwt.verify(socket.handshake.auth?.token, jwtKey, { algorithms: ['HS256'] });
    if (typeof claims.sub !== 'string' || typeof claims.deviceId !== 'string') throw new Error('sub and deviceId claims are required');
    socket.data = { deviceId: claims.deviceId, userId: claims.sub };
    next();
  } catch (err) {
    next(new Error(`invalid token: ${err.message}`));
  }
});

io.on('connection', (socket) => {
  const { deviceId, userId } = socket.data;
  const key = presenceKey(deviceId);
  const dkey = deviceKey(deviceId);
  let interval = defaultInterval;
  socket.join([`device:${deviceId}`, `user:${userId}`]);

  const connectedAt = Date.now();
  const stored = durable
    ? redis.baselineConnect(key, dkey, socket.id, ttlFor(interval), connectedAt, connectedAt + ttlFor(interval), userId)
    : redis.set(key, socket.id, 'PX', ttlFor(interval));
  stored.then(
    () => socket.emit('ready', {
      sessionId: socket.id,
      deviceId,
      userId,
      heartbeat: { interval, min: minInterval, max: maxInterval, ttl: ttlFor(interval) },
      serverTime: Date.now(),
    }),
    () => socket.disconnect(true),
  );

  socket.on('heartbeat', (payload, ack) => {
    if (typeof payload === 'function') [payload, ack] = [undefined, payload];
    const wanted = payload?.interval;
    if (typeof wanted === 'number' && Number.isFinite(wanted) && wanted > 0) interval = clamp(wanted);
    const ttl = ttlFor(interval);
    counters.heartbeats++;
    let extended;
    if (durable) {
      const now = Date.now();
      extended = redis.baselineBeat(key, dkey, socket.id, ttl, now, now + ttl);
    } else extended = redis.set(key, socket.id, 'PX', ttl);
    extended.then(
      (ok) => ack?.(ok === 0 ? { ok: false, error: { code: 'session_expired', message: 'session is over' } } : { ok: true, interval, ttl, serverTime: Date.now() }),
      () => ack?.({ ok: false, error: { code: 'unavailable', message: 'redis unavailable' } }),
    );
  });

  // Topics: join a room per topic (no check against the token's topic grants: the simplest server would not).
  socket.on('subscribe', (payload, ack) => {
    const topics = Array.isArray(payload?.topics) ? payload.topics.filter((t) => typeof t === 'string' && t.length > 0) : [];
    if (topics.length === 0) return ack?.({ ok: false, error: { code: 'invalid_payload', message: 'topics' } });
    socket.join(topics.map((t) => `topic:${t}`));
    ack?.({ ok: true, topics });
  });

  // Simplest correct for this bench: a device never reconnects while its old socket is alive here,
  // so a plain DEL cannot remove a newer session's key.
  socket.on('disconnect', () => {
    redis.del(key).catch(() => {});
  });
});

async function handleHttp(req, res) {
  if (req.method === 'GET' && (req.url === '/health/ready' || req.url === '/health/live')) {
    return reply(res, redis.status === 'ready' ? 200 : 503, { status: redis.status });
  }
  if (req.method === 'GET' && req.url === '/stats') return reply(res, 200, counters);
  if (req.method !== 'POST' || req.url !== '/push') return reply(res, 404, { error: 'not found' });

  const body = await readJson(req);
  if (!body) return reply(res, 400, { error: 'invalid JSON body' });
  const deviceIds = Array.isArray(body.deviceIds) ? body.deviceIds : [];
  const userIds = Array.isArray(body.userIds) ? body.userIds : [];
  const topic = typeof body.topic === 'string' && body.topic.length > 0 ? body.topic : undefined;
  if (deviceIds.length + userIds.length + (topic ? 1 : 0) === 0 || deviceIds.length > 1000 || userIds.length > 1000) {
    return reply(res, 400, { error: 'deviceIds / userIds: 1-1000 ids, or a topic' });
  }
  const rooms = [...deviceIds.map((id) => `device:${id}`), ...userIds.map((id) => `user:${id}`), ...(topic ? [`topic:${topic}`] : [])];
  const targets = targetSockets(rooms);
  const payload = { id: randomUUID(), data: body.data, createdAt: Date.now() };
  if (durable) {
    // An inbox entry for each device named and each device reached (a user's, a topic's).
    const inboxDevices = new Set(deviceIds);
    for (const id of targets) inboxDevices.add(io.sockets.sockets.get(id)?.data.deviceId);
    inboxDevices.delete(undefined);
    const notif = `${prefix}notif:${payload.id}`;
    const stored = await redis.baselineStore(
      2 + inboxDevices.size,
      `${prefix}rate:${Math.floor(payload.createdAt / 60_000)}`,
      notif,
      ...[...inboxDevices].map((id) => `${prefix}inbox:${id}`),
      payload.id,
      JSON.stringify(payload),
      payload.createdAt,
      1_000_000,
      120_000,
      ackTimeoutMs,
      ...inboxDevices,
    );
    if (stored === 0) return reply(res, 429, { error: 'rate limit' });
  }
  for (const id of targets) {
    counters.pushesSent++;
    const socket = io.sockets.sockets.get(id);
    socket?.timeout(ackTimeoutMs).emit('notification', payload, (err) => {
      if (err) counters.pushesUnacked++;
      else counters.pushesAcked++;
      if (!err && durable) {
        const deviceId = socket.data.deviceId;
        redis.baselineReceipt(`${prefix}notif:${payload.id}`, `${prefix}inbox:${deviceId}`, payload.id, deviceId, Date.now()).catch(() => {});
      }
    });
  }
  return reply(res, 202, { id: payload.id, online: targets.size, queued: 0 });
}

function targetSockets(rooms) {
  const ids = new Set();
  for (const room of rooms) for (const id of io.sockets.adapter.rooms.get(room) ?? []) ids.add(id);
  return ids;
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > BODY_LIMIT) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        resolve(null);
      }
    });
    req.on('error', () => resolve(null));
  });
}

function reply(res, status, body) {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function main() {
  await redis.connect();
  await new Promise((resolve) => httpServer.listen(port, host, resolve));
  process.stdout.write(`baseline listening on ${host}:${port}\n`);
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    io.close();
    redis.disconnect();
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`baseline failed to start: ${err.stack}\n`);
  process.exit(1);
});
