// Presence on real networks: the scenarios behind test/netlab-presence.e2e-spec.ts (which asserts
// the targets) and `npm run netlab` (which writes docs/presence-accuracy.md from one run). Each
// runs the built gateway (dist/main.js) in the root namespace on its own Redis, and devices that
// use the real client SDK (netlab/fleet.mjs) in lab network namespaces (netlab/lab.mjs): dead
// links, hung apps, NAT mappings that expire, delay and loss. Nothing is simulated above the
// kernel: TCP retransmits, the NAT forgets, the gateway's sweeper and the SDK's timers decide.
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, sleep, spawnTracked, stopChild, waitHttpOk } from '../bench/lib/procs.mjs';
import { startRedis } from '../bench/lib/redis.mjs';
import { favour } from './lab.mjs';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const FLEET = join(ROOT, 'netlab/fleet.mjs');

/** The gateway settings of the measurements in the issue: a 2 s interval, a 500 ms sweep. */
export const FAST = { interval: 2_000, sweep: 500 };

/** A Redis for the lab's gateways, with keyspace events on so presence changes can be timed. */
export async function startLabRedis() {
  const redis = await startRedis();
  favour(redis.pid);
  await redis.client.config('SET', 'notify-keyspace-events', 'Kgx$');
  return redis;
}

/**
 * One gateway process listening on every address (lab namespaces reach it through their veth),
 * with its own key prefix. `heartbeat` pins the interval: min = interval = max unless given.
 */
/**
 * The TTL of a beat (or a session start) whose client reported no round trip: 2.5 intervals +
 * HEARTBEAT_TTL_SLACK_MS (3 s, the default; the lab gateways keep it). Each device's own adds 8 of
 * its round trips (src/presence/heartbeat-policy.ts).
 */
const baseTtl = (interval) => Math.ceil(2.5 * interval) + 3_000;

const sessionStarts = (readies, interval) => {
  const slack = readies.map((r) => r.heartbeat.ttl - baseTtl(interval));
  return { count: readies.length, minSlackMs: Math.min(...slack), maxSlackMs: Math.max(...slack) };
};

export async function startLabGateway(name, { redisUrl, interval, min = interval, max = interval, sweep = FAST.sweep, env = {} }) {
  const port = await freePort();
  const apiKey = `netlab-${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(32).toString('hex');
  const prefix = `netlab-${name}:`;
  const child = spawnTracked(`gateway-${name}`, process.execPath, [join(ROOT, 'dist/main.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '0.0.0.0',
      PORT: String(port),
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      API_KEYS: apiKey,
      DEVICE_JWT_SECRET: secret,
      INSTANCE_ID: `netlab-${name}`,
      HEARTBEAT_INTERVAL_MS: String(interval),
      HEARTBEAT_MIN_MS: String(min),
      HEARTBEAT_MAX_MS: String(max),
      SWEEP_INTERVAL_MS: String(sweep),
      LOG_LEVEL: 'warn',
      OPS_TOKEN: apiKey,
      HANDSHAKES_PER_ADDRESS_PER_SECOND: '100000',
      ...env,
    },
  });
  favour(child.pid);
  const url = `http://127.0.0.1:${port}`;
  await waitHttpOk(`${url}/health/ready`, child, 30_000);
  return {
    name,
    port,
    url,
    prefix,
    secret,
    apiKey,
    child,
    output: () => child.output(),
    async metric(series) {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${apiKey}` } })).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `) || l.startsWith(`${series}{`) && l.includes(series));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    },
    async device(deviceId) {
      const res = await fetch(`${url}/v1/devices/${deviceId}`, { headers: { authorization: `Bearer ${apiKey}` } });
      return res.status === 200 ? res.json() : undefined;
    },
    stop: () => stopChild(child, 3_000),
  };
}

/**
 * Times every presence change of a gateway's devices from Redis keyspace events: `set` when a
 * session starts or a heartbeat lands, `expired`/`del` when the device went offline (its TTL ran
 * out, a sweep, or a clean disconnect). Times are this process's clock, which is the machine's.
 */
export async function watchPresence(redisUrl, prefix) {
  const sub = new Redis(redisUrl, { lazyConnect: true });
  sub.on('error', () => {});
  await sub.connect();
  const channelPrefix = `__keyspace@0__:${prefix}presence:`;
  /** deviceId -> [{ t, op }] */
  const events = new Map();
  sub.on('pmessage', (_pattern, channel, op) => {
    if (!channel.startsWith(channelPrefix)) return;
    const deviceId = channel.slice(channelPrefix.length);
    if (deviceId.startsWith('expiry:')) return;
    const list = events.get(deviceId) ?? [];
    list.push({ t: Date.now(), op });
    events.set(deviceId, list);
  });
  await sub.psubscribe(`${channelPrefix}*`);
  return {
    events,
    /** Moments a device went offline (`expired` or `del`) at or after `since`. */
    offlines(deviceId, since = 0) {
      return (events.get(deviceId) ?? []).filter((e) => e.t >= since && (e.op === 'expired' || e.op === 'del')).map((e) => e.t);
    },
    close: () => sub.quit().catch(() => undefined),
  };
}

/** A fleet process of SDK devices inside a lab network; its reports are collected per device. */
export async function startFleet(net, gateway, devices, { foreground = false } = {}) {
  const config = { url: `http://${net.serverIp}:${gateway.port}`, secret: gateway.secret, devices, foreground };
  const child = net.spawn(process.execPath, [FLEET, JSON.stringify(config)], { cwd: ROOT });
  favour(child.pid);
  /** deviceId -> reports in order */
  const reports = new Map(devices.map((d) => [d.deviceId, []]));
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const r = JSON.parse(line);
        reports.get(r.d)?.push(r);
      } catch {
        /* not a report */
      }
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4_000)));
  const fleet = {
    child,
    reports,
    stderr: () => stderr,
    of: (deviceId, e) => (reports.get(deviceId) ?? []).filter((r) => r.e === e),
    /** Resolves when every device reported `count` acked heartbeats since `since` (or throws at the deadline). */
    async beating(count = 1, since = 0, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const behind = devices.filter((d) => fleet.of(d.deviceId, 'hb').filter((r) => r.ok && r.t >= since).length < count);
        if (behind.length === 0) return;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`${behind.length} of ${devices.length} devices did not beat ${count}x within ${timeoutMs} ms (e.g. ${behind[0].deviceId}: ${JSON.stringify(fleet.reports.get(behind[0].deviceId)?.slice(-5))})\n${stderr}`);
        }
        await sleep(100);
      }
    },
    stop: () => stopChild(child, 2_000),
  };
  return fleet;
}

export function deviceIds(prefix, count, network) {
  return Array.from({ length: count }, (_, i) => ({ deviceId: `${prefix}-${i}`, userId: `u-${prefix}-${i}`, ...(network ? { network } : {}) }));
}

/**
 * The gateway's TCP connections (not TIME-WAIT, not LISTEN) with a peer address, as `ip:port`
 * strings, read from the kernel's tables in /proc/net (the gateway runs in the root namespace): a
 * read of a few hundred lines, where spawning `ss` took hundreds of milliseconds on a loaded
 * machine and made a connection look gone that much later than it was.
 */
export async function serverConnections(gatewayPort, peerIp) {
  const port = gatewayPort.toString(16).toUpperCase().padStart(4, '0');
  const peerV4 = ipv4Hex(peerIp);
  const peerMapped = `0000000000000000FFFF0000${peerV4}`;
  const found = [];
  for (const [file, peer] of [['/proc/net/tcp', peerV4], ['/proc/net/tcp6', peerMapped]]) {
    const table = await readFile(file, 'utf8').catch(() => '');
    for (const line of table.split('\n').slice(1)) {
      const [, local, remote, state] = line.trim().split(/\s+/);
      if (!remote || state === TCP_TIME_WAIT || state === TCP_LISTEN) continue;
      const [, localPort] = local.split(':');
      const [remoteIp, remotePort] = remote.split(':');
      if (localPort === port && remoteIp === peer) found.push(`${peerIp}:${parseInt(remotePort, 16)}`);
    }
  }
  return found;
}

const TCP_TIME_WAIT = '06';
const TCP_LISTEN = '0A';

/** An IPv4 address as /proc/net/tcp prints it: the 32-bit word in the host's (little-endian) order. */
function ipv4Hex(ip) {
  return ip
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'))
    .join('');
}

/**
 * Follows the gateway's TCP connections to `peerIp` by polling ss every 50 ms: `goneAt(peer)` is the
 * first poll that no longer listed `ip:port` (a reset connection leaves no TIME-WAIT behind).
 */
export function watchConnections(gatewayPort, peerIp) {
  const seen = new Map();
  const gone = new Map();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const now = await serverConnections(gatewayPort, peerIp).catch(() => undefined);
      if (now) {
        const t = Date.now();
        for (const peer of now) seen.set(peer, t);
        for (const peer of seen.keys()) if (!now.includes(peer) && !gone.has(peer)) gone.set(peer, t);
      }
      await sleep(50);
    }
  })();
  return {
    goneAt: (peer) => gone.get(peer) ?? NaN,
    async until(peers, timeoutMs) {
      await waitUntil(() => peers.every((p) => gone.has(p)), timeoutMs);
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

async function waitUntil(check, timeoutMs, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(stepMs);
  }
  return false;
}

/**
 * A device dies without a word: its link is blackholed, its app hangs (SIGSTOP), or its NAT
 * mapping is dropped. For each device: when the gateway last heard a heartbeat, when presence said
 * offline, when the gateway's TCP connection was gone, and when the SDK noticed (where it can).
 * Bounds: offline within ttl + sweep of the last heartbeat; TCP gone within 1 s of that; the SDK
 * reports a dead link within interval + 2 s of the cut.
 */
export async function deathScenario({ lab, redis, kind, devices = 5, interval = FAST.interval, sweep = FAST.sweep }) {
  const gateway = await startLabGateway(`death-${kind}`, { redisUrl: redis.url, interval, sweep });
  const watch = await watchPresence(redis.url, gateway.prefix);
  const net = await lab.addNetwork({ name: kind, ...(kind === 'nat' ? { nat: { idleTimeoutS: 600 } } : {}) });
  const ids = deviceIds(`death-${kind}`, devices);
  const fleet = await startFleet(net, gateway, ids);
  let connections;
  try {
    await fleet.beating(3);
    const ttl = baseTtl(interval);
    const peerIp = kind === 'nat' ? net.routerIp : net.clientIp;
    // Each device's connection as the gateway sees it: its own port, or the port its NAT mapped it to.
    const mapped = kind === 'nat' ? new Map((await net.natFlows()).map((f) => [f.orig.sport, f.reply.dport])) : undefined;
    const peerOf = (deviceId) => {
      const port = fleet.of(deviceId, 'ready').at(-1)?.port;
      return `${peerIp}:${mapped?.get(port) ?? port}`;
    };
    const peers = new Map(ids.map((d) => [d.deviceId, peerOf(d.deviceId)]));
    connections = watchConnections(gateway.port, peerIp);
    await waitUntil(async () => (await serverConnections(gateway.port, peerIp)).length >= ids.length, 5_000);
    const cutAt = Date.now();
    if (kind === 'blackhole') await net.blackhole();
    else if (kind === 'hung') process.kill(fleet.child.pid, 'SIGSTOP');
    else await net.dropNatMappings();
    const perDevice = [];
    if (kind === 'nat') {
      // The SDK finds out at its next beat and reconnects through a fresh mapping; the gateway
      // replaces the old session, whose connection must be gone within 1 s of that.
      await waitUntil(() => ids.every((d) => fleet.of(d.deviceId, 'ready').some((r) => r.t > cutAt)), interval * 3 + 10_000);
      await connections.until([...peers.values()], 10_000);
      for (const d of ids) {
        const gone = connections.goneAt(peers.get(d.deviceId));
        const noticed = fleet.of(d.deviceId, 'offline').find((r) => r.t > cutAt);
        const ready = fleet.of(d.deviceId, 'ready').find((r) => r.t > cutAt);
        perDevice.push({
          deviceId: d.deviceId,
          sdkNoticedMs: noticed ? noticed.t - cutAt : NaN,
          sdkReason: noticed?.reason,
          newSessionMs: ready ? ready.t - cutAt : NaN,
          oldConnectionGoneAfterNewSessionMs: ready ? gone - ready.t : NaN,
          falseOfflines: watch.offlines(d.deviceId, cutAt).length,
        });
      }
    } else {
      // What the gateway granted with each device's last heartbeat (a beat in flight at the cut has
      // landed a second later; presence lives far longer than that). The ttl of a beat includes the
      // slack for the round trip the SDK reported, so it is read, not assumed.
      await sleep(1_000);
      const granted = new Map();
      for (const d of ids) {
        const [last, expires] = await redis.client.hmget(`${gateway.prefix}device:${d.deviceId}`, 'lastHeartbeatAt', 'expiresAt');
        granted.set(d.deviceId, { last: Number(last), ttl: Number(expires) - Number(last) });
      }
      await waitUntil(() => ids.every((d) => watch.offlines(d.deviceId, cutAt).length > 0), ttl + 12_000 + sweep * 2 + 5_000);
      await connections.until([...peers.values()], 10_000);
      for (const d of ids) {
        const gone = connections.goneAt(peers.get(d.deviceId));
        const { last, ttl: grantedTtl } = granted.get(d.deviceId);
        const offlineAt = watch.offlines(d.deviceId, cutAt)[0] ?? NaN;
        const noticed = fleet.of(d.deviceId, 'offline').find((r) => r.t > cutAt);
        perDevice.push({
          deviceId: d.deviceId,
          ttlMs: grantedTtl,
          offlineAfterLastBeatMs: offlineAt - last,
          tcpGoneAfterLastBeatMs: gone - last,
          tcpGoneAfterOfflineMs: gone - offlineAt,
          sdkNoticedMs: kind === 'blackhole' && noticed ? noticed.t - cutAt : NaN,
          sdkReason: noticed?.reason,
        });
      }
      if (kind === 'hung') {
        // The app wakes up: its connection was reset meanwhile, so every device starts a new session.
        const resumedAt = Date.now();
        process.kill(fleet.child.pid, 'SIGCONT');
        await waitUntil(() => ids.every((d) => fleet.of(d.deviceId, 'ready').some((r) => r.t > resumedAt)), 20_000);
        for (const [i, d] of ids.entries()) {
          const ready = fleet.of(d.deviceId, 'ready').find((r) => r.t > resumedAt);
          perDevice[i].newSessionAfterResumeMs = ready ? ready.t - resumedAt : NaN;
        }
      }
    }
    return { kind, interval, sweep, ttl, devices, cutAt, perDevice };
  } finally {
    await connections?.stop();
    if (kind === 'hung') process.kill(fleet.child.pid, 'SIGCONT');
    await fleet.stop();
    await watch.close();
    await gateway.stop();
  }
}

/**
 * Many devices on a slow, lossy link for a while: how many the gateway showed offline although
 * they never stopped (false offline), how many times the SDKs thought the link dead, and what the
 * heartbeat round trips were.
 */
export async function lossyScenario({ lab, redis, name, devices, interval, delayMs, jitterMs, lossPct, durationMs, sweep = FAST.sweep }) {
  const gateway = await startLabGateway(`lossy-${name}`, { redisUrl: redis.url, interval, sweep });
  const watch = await watchPresence(redis.url, gateway.prefix);
  const net = await lab.addNetwork({ name, delayMs, jitterMs, lossPct });
  const ids = deviceIds(`lossy-${name}`, devices);
  const fleet = await startFleet(net, gateway, ids);
  try {
    await fleet.beating(1, 0, 120_000);
    const from = Date.now();
    const expiredBefore = await gateway.metric('push_gateway_presence_expired_total');
    await sleep(durationMs);
    const to = Date.now();
    const falseOffline = ids.filter((d) => watch.offlines(d.deviceId, from).some((t) => t <= to));
    const beats = ids.flatMap((d) => fleet.of(d.deviceId, 'hb').filter((r) => r.t >= from && r.t <= to));
    const deadLinks = ids.flatMap((d) => fleet.of(d.deviceId, 'offline').filter((r) => r.t >= from && r.t <= to));
    return {
      name,
      devices,
      interval,
      delayMs,
      jitterMs,
      lossPct,
      durationMs: to - from,
      ttl: baseTtl(interval),
      // Every session's first TTL (reconnects included) over the base: the round trip its SDK announced, x 8.
      sessionStarts: sessionStarts(ids.flatMap((d) => fleet.of(d.deviceId, 'ready')), interval),
      falseOfflineDevices: falseOffline.map((d) => d.deviceId),
      // What happened around each false offline: the presence key's changes and the device's own reports.
      falseOfflineDetail: falseOffline.map((d) => {
        const at = watch.offlines(d.deviceId, from)[0];
        const near = (t) => Math.abs(t - at) <= 20_000;
        return {
          deviceId: d.deviceId,
          presence: (watch.events.get(d.deviceId) ?? []).filter((e) => near(e.t)).map((e) => ({ ms: e.t - at, op: e.op })),
          reports: (fleet.reports.get(d.deviceId) ?? []).filter((r) => near(r.t)).map(({ t, e, ...rest }) => ({ ms: t - at, e, ...rest })),
        };
      }),
      offlineEvents: ids.reduce((n, d) => n + watch.offlines(d.deviceId, from).filter((t) => t <= to).length, 0),
      sweptByGateway: (await gateway.metric('push_gateway_presence_expired_total')) - expiredBefore,
      heartbeats: beats.length,
      heartbeatsFailed: beats.filter((r) => !r.ok).length,
      sdkDeadLinks: deadLinks.length,
      impairment: await net.counters().catch(() => undefined),
    };
  } finally {
    await fleet.stop();
    await watch.close();
    await gateway.stop();
  }
}

/**
 * Smart heartbeat behind a NAT that forgets idle mappings after T: one device learns from scratch
 * (its trajectory of intervals, the links it lost and how fast it noticed), then a new device on
 * the same network key starts from what the gateway learned and must not lose a link.
 */
export async function natLearningScenario({ lab, redis, natTimeoutS = 12, start = 4_000, min = 2_000, max = 30_000, learnMs = 150_000, newDeviceMs = 100_000, sweep = FAST.sweep }) {
  const gateway = await startLabGateway('nat-learning', { redisUrl: redis.url, interval: start, min, max, sweep });
  const net = await lab.addNetwork({ name: 'natlearn', nat: { idleTimeoutS: natTimeoutS } });
  const network = 'wifi:netlab-nat';
  const first = await startFleet(net, gateway, [{ deviceId: 'nat-first', userId: 'u-nat', network }]);
  let second;
  try {
    const t0 = Date.now();
    await sleep(learnMs);
    second = await startFleet(net, gateway, [{ deviceId: 'nat-second', userId: 'u-nat', network }]);
    const secondFrom = Date.now();
    await sleep(newDeviceMs);
    const trajectory = (fleet, deviceId, from) =>
      fleet.of(deviceId, 'hb').map((r) => ({ t: r.t - from, interval: r.interval, ok: r.ok }));
    const losses = (fleet, deviceId) => {
      const hbs = fleet.of(deviceId, 'hb');
      return fleet.of(deviceId, 'offline').map((off) => {
        // The mapping died T after the last traffic before the failed beat: that beat's predecessor's ack.
        const lastOk = [...hbs].reverse().find((h) => h.ok && h.t < off.t);
        const failed = [...hbs].reverse().find((h) => h.t <= off.t);
        return { t: off.t, reason: off.reason, interval: failed?.interval, noticedAfterMappingDiedMs: lastOk ? off.t - (lastOk.t + natTimeoutS * 1_000) : NaN };
      });
    };
    const firstBeats = first.of('nat-first', 'hb').filter((r) => r.ok);
    const settled = firstBeats.at(-1)?.interval;
    const secondReady = second.of('nat-second', 'ready')[0];
    return {
      natTimeoutMs: natTimeoutS * 1_000,
      start,
      max,
      first: {
        trajectory: trajectory(first, 'nat-first', t0),
        losses: losses(first, 'nat-first'),
        settled,
        // Settled: the last beats all at one interval, acked.
        lastBeats: firstBeats.slice(-4).map((r) => r.interval),
      },
      second: {
        recommended: secondReady?.heartbeat?.recommended,
        trajectory: trajectory(second, 'nat-second', secondFrom),
        losses: losses(second, 'nat-second').filter((l) => l.t - secondFrom <= newDeviceMs),
        // On a failure: what the device reported first (its handshake), and its fleet's stderr.
        firstReports: (second.reports.get('nat-second') ?? []).slice(0, 6).map(({ t, ...rest }) => ({ ms: t - secondFrom, ...rest })),
        stderr: second.stderr().slice(-1_000),
      },
    };
  } finally {
    await first.stop();
    await second?.stop();
    await gateway.stop();
  }
}
