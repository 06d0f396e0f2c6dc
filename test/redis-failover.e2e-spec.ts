import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, sleep, startTestApp, TestApp, waitFor } from './support/app';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { FreezableProxy, RedisServer, replicaCaughtUp, replicationInfo, sentinelMaster, startSentinel } from './support/redis-servers';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/** A device that heartbeats every 300 ms and acks what it receives. */
async function beatingDevice(url: string, deviceId: string, sockets: Socket[]) {
  const socket = connectDevice(url, deviceToken({ sub: 'ha-user', deviceId }));
  sockets.push(socket);
  const received: Json[] = [];
  const acks: Json[] = [];
  socket.on('notification', (n: Json, ack: () => void) => (received.push(n), ack()));
  await nextEvent(socket, 'ready');
  const timer = setInterval(() => socket.emit('heartbeat', {}, (a: Json) => acks.push(a)), 300);
  socket.on('disconnect', () => clearInterval(timer));
  return { socket, received, acks };
}

const post = (url: string, json: Json) => api(url, '/v1/notifications', { method: 'POST', json });

describe('Redis failures (separate processes)', () => {
  const sockets: Socket[] = [];
  const gateways: RunningGateway[] = [];
  const servers: { kill(): void }[] = [];
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.disconnect());
    gateways.splice(0).forEach((g) => g.process.child.exitCode === null && g.process.child.kill('SIGKILL'));
    servers.splice(0).forEach((s) => s.kill());
  });

  it('rides out a Redis restart mid-traffic: fast 503s, readiness red then green, delivery across instances resumes', async () => {
    const redis = await (await RedisServer.create(['--appendonly', 'yes', '--appendfsync', 'always'])).start();
    servers.push(redis);
    const env = { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '500', HEARTBEAT_INTERVAL_MS: '1000' };
    const [a, b] = await Promise.all([startGateway('ha-a', env), startGateway('ha-b', env)]);
    gateways.push(a, b);
    const d = await beatingDevice(a.url, 'steady', sockets);
    expect((await post(b.url, { deviceIds: ['steady'], data: { text: 'before' }, ttl: 60 })).status).toBe(202);
    await waitFor(() => d.received.length === 1);

    await redis.stop(); // gone, and the gateways' connections closed with it
    const started = Date.now();
    const during = await post(b.url, { deviceIds: ['steady'], data: { text: 'during' }, ttl: 60 });
    expect(during.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(during.headers.get('retry-after')).toBe('1');
    expect((await fetch(`${a.url}/health/ready`)).status).toBe(503);

    await redis.start();
    await waitFor(async () => (await fetch(`${a.url}/health/ready`)).ok && (await fetch(`${b.url}/health/ready`)).ok, 10_000, 100);
    const after = (await (await post(b.url, { deviceIds: ['steady'], data: { text: 'after' }, ttl: 60 })).json()) as Json;
    expect(after).toMatchObject({ online: 1 });
    await waitFor(() => d.received.some((n) => n.id === after.id), 5_000);
    expect(d.socket.connected).toBe(true);
    expect(a.process.child.exitCode).toBeNull();
    expect(b.process.child.exitCode).toBeNull();
  });

  it('ends a session that closed while Redis was down once Redis is back (client_close), not at its presence TTL', async () => {
    const redis = await (await RedisServer.create(['--appendonly', 'yes', '--appendfsync', 'always'])).start();
    servers.push(redis);
    // A 53 s TTL (2.5 x 20 s + slack): without the retry the device would show online that long.
    const gw = await startGateway('end-retry', { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '300', HEARTBEAT_INTERVAL_MS: '20000' });
    gateways.push(gw);
    const socket = connectDevice(gw.url, deviceToken({ sub: 'end-user', deviceId: 'left-in-outage' }));
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    expect((await getJson(gw.url, '/v1/devices/left-in-outage')).online).toBe(true);

    await redis.stop();
    const left = Date.now();
    socket.disconnect(); // the gateway's write of the session end fails: Redis is gone
    await waitFor(() => gw.process.output().includes('left-in-outage not removed on disconnect'), 5_000, 50);
    await redis.start(); // the same data (append-only file): the session is still there
    await waitFor(async () => (await api(gw.url, '/health/ready')).status === 200, 10_000, 100);
    // Retried after 1, 2, 4 s while Redis was away: well within 15 s of its return.
    await waitFor(async () => (await getJson(gw.url, '/v1/devices/left-in-outage')).online === false, 15_000, 200);
    const device = await getJson(gw.url, '/v1/devices/left-in-outage');
    // lastSeenAt is when the socket closed (the retry keeps it), not when Redis came back.
    expect(device.lastSeenAt).toBeGreaterThanOrEqual(left - 1_000);
    expect(device.lastSeenAt).toBeLessThan(left + 1_000);
    // The log shows an event once every partition's floor has passed it (a moment).
    const offline = async () =>
      ((await getJson(gw.url, '/v1/events?limit=100')).events as Json[]).filter((e) => e.type === 'device.offline' && e.data.deviceId === 'left-in-outage');
    await waitFor(async () => (await offline()).length > 0, 5_000, 100);
    expect((await offline()).map((e) => e.data.reason)).toEqual(['client_close']);
  });

  it('continues on the new master after a Sentinel failover during traffic', async () => {
    const master = await (await RedisServer.create(['--repl-diskless-sync-delay', '0'])).start();
    const replica = await (await RedisServer.create(['--replicaof', '127.0.0.1', String(master.port)])).start();
    servers.push(master, replica);
    await waitFor(async () => /master_link_status:up/.test(await replicationInfo(replica.port)), 10_000, 50);
    const sentinel = await startSentinel(master.port, 'pgmaster');
    servers.push({ kill: () => sentinel.process.kill('SIGKILL') });
    const env = {
      REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
      REDIS_SENTINEL_NAME: 'pgmaster',
      REDIS_COMMAND_TIMEOUT_MS: '500',
      // The TTL (2.5 x 4 s) outlasts the failover (detection after 1 s, then the promotion), as the
      // 62.5 s default does in production; a longer outage retires sessions, and clients reconnect.
      HEARTBEAT_INTERVAL_MS: '4000',
    };
    const gw = await startGateway('sentinel-a', env);
    gateways.push(gw);
    const d = await beatingDevice(gw.url, 'sentinel-dev', sockets);
    expect((await post(gw.url, { deviceIds: ['sentinel-dev'], data: { text: 'on master 1' } })).status).toBe(202);
    await waitFor(() => d.received.length === 1);

    // Traffic keeps flowing while the master dies and the sentinel promotes the replica.
    const statuses: number[] = [];
    /** Statuses of the requests the loop started after the gateway had recovered. */
    const afterRecovery: number[] = [];
    let recovered = false;
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; i < 200 && !stop; i++) {
        const startedRecovered = recovered;
        const status = (await post(gw.url, { deviceIds: ['sentinel-dev'], data: { i }, ttl: 60 })).status;
        statuses.push(status);
        if (startedRecovered) afterRecovery.push(status);
        await sleep(50); // pacing the load, not a synchronization: the loop must last through the failover
      }
    })();
    await waitFor(async () => (await replicationInfo(master.port)).includes(`port=${replica.port},state=online`), 10_000, 50);
    // Publishes accepted during traffic are on the replica before the master dies.
    await waitFor(() => statuses.filter((s) => s === 202).length >= 3, 5_000);
    await replicaCaughtUp(master.port);
    master.kill();
    await waitFor(async () => (await sentinelMaster(sentinel.port, 'pgmaster')) === replica.port, 20_000, 200);
    let lastHealth = '';
    await waitFor(async () => {
      const r = await fetch(`${gw.url}/health/ready`);
      lastHealth = await r.text();
      return r.ok;
    }, 15_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}; last /health/ready: ${lastHealth}\n${gw.process.output().slice(-1500)}`);
    });
    const after = (await (await post(gw.url, { deviceIds: ['sentinel-dev'], data: { text: 'on the new master' } })).json()) as Json;
    expect(after).toMatchObject({ online: 1 });
    // The traffic itself recovered: what it sends from now on is accepted (a request it had started
    // before this point may still have met the failover).
    recovered = true;
    await waitFor(() => afterRecovery.length >= 3, 5_000);
    stop = true;
    await traffic;
    await waitFor(() => d.received.some((n) => n.id === after.id), 5_000);
    expect(statuses.every((s) => s === 202 || s === 503)).toBe(true); // never a 500, never a hang
    expect(afterRecovery.every((s) => s === 202)).toBe(true);
    const health = await getJson(gw.url, '/health/ready');
    expect(health.checks.store).toMatchObject({ status: 'up', mode: 'sentinel' });
    expect(await d.socket.timeout(3_000).emitWithAck('heartbeat', {})).toMatchObject({ ok: true });
  });
});

describe('a silently dead Redis link (in-process, frozen TCP proxy)', () => {
  it('is detected by the probe and rebuilt, so cross-instance delivery resumes', async () => {
    const redis = await (await RedisServer.create()).start();
    const proxy = await new FreezableProxy(redis.port).start();
    // Pushes go from b to a device on a through the Redis adapter, whose cleanup timer of
    // ACK_TIMEOUT_MS (default 10 s) outlives close(): keep it short.
    // The device's presence (2.5 intervals + 5 s of slack) must outlive the detection, the rebuild
    // and its next heartbeat: with 5 s and no slack, one run under the whole suite's load saw it
    // swept before the rebuild (online: 0).
    const common = { REDIS_PREFIX: 'frozen:', REDIS_COMMAND_TIMEOUT_MS: '300', REDIS_PROBE_INTERVAL_MS: '150', HEARTBEAT_INTERVAL_MS: '2000', HEARTBEAT_TTL_SLACK_MS: '5000', ACK_TIMEOUT_MS: '1000' };
    let a: TestApp | undefined;
    let b: TestApp | undefined;
    const sockets: Socket[] = [];
    try {
      a = await startTestApp({ ...common, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, INSTANCE_ID: 'frozen-a' });
      b = await startTestApp({ ...common, REDIS_URL: redis.url, INSTANCE_ID: 'frozen-b' });
      const d = await beatingDevice(a.url, 'behind-proxy', sockets);
      const first = (await (await post(b.url, { deviceIds: ['behind-proxy'], data: { n: 1 } })).json()) as Json;
      await waitFor(() => d.received.some((n) => n.id === first.id));

      proxy.freeze();
      await waitFor(async () => (await fetch(`${a!.url}/health/ready`)).status === 503, 3_000, 50);
      await waitFor(async () => (await fetch(`${a!.url}/health/ready`)).ok, 10_000, 100);
      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      expect(metrics).toMatch(/push_gateway_redis_reconnects_total\{role="subscribe"\} [1-9]/);
      const second = (await (await post(b.url, { deviceIds: ['behind-proxy'], data: { n: 2 }, ttl: 60 })).json()) as Json;
      expect(second).toMatchObject({ online: 1 });
      await waitFor(() => d.received.some((n) => n.id === second.id), 5_000);
    } finally {
      sockets.forEach((s) => s.disconnect());
      await a?.close().catch(() => undefined);
      await b?.close().catch(() => undefined);
      await proxy.stop();
      redis.kill();
    }
  });
});
