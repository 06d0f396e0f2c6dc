import { connect } from 'node:net';
import { Socket } from 'socket.io-client';
import { api, connectDevice, metric, nextEvent, waitFor } from './support/app';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { deleteKeys, deviceKey, testKeys, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TEST_API_KEY } from './support/tokens';

type Json = Record<string, any>;

/** Several gateway processes on one Redis, behaving as one gateway. */
describe('several instances (separate processes, real Redis)', () => {
  const prefix = uniquePrefix('scale');
  const redis = testRedis();
  const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix };
  const gateways: RunningGateway[] = [];
  const sockets: Socket[] = [];
  let a: RunningGateway;
  let b: RunningGateway;

  const device = async (gw: RunningGateway, deviceId: string, opts: { topics?: string[]; beat?: boolean } = {}) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'scale-user', deviceId, topics: opts.topics }));
    sockets.push(socket);
    const received: Json[] = [];
    socket.on('notification', (n: Json, ack: () => void) => {
      received.push(n);
      ack();
    });
    const ready = await nextEvent<Json>(socket, 'ready');
    if (opts.beat ?? true) {
      const timer = setInterval(() => socket.emit('heartbeat', {}), 300);
      socket.on('disconnect', () => clearInterval(timer));
    }
    return { socket, received, ready };
  };
  const publish = async (gw: RunningGateway, json: Json) => (await (await api(gw.url, '/v1/notifications', { method: 'POST', json })).json()) as Json;
  const presenceOf = (deviceId: string) => redis.get(deviceKey(prefix, 'presence', deviceId));

  beforeAll(async () => {
    [a, b] = await Promise.all([startGateway('gw-a', env), startGateway('gw-b', env)]);
    gateways.push(a, b);
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(async () => {
    for (const gw of gateways) if (gw.process.child.exitCode === null) gw.process.child.kill('SIGKILL');
    await Promise.all(gateways.map((gw) => gw.process.exited));
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('delivers a push accepted by one instance to a device on the other, and records its ack', async () => {
    const d = await device(a, 'cross-1');
    const answer = await publish(b, { deviceIds: ['cross-1'], data: { text: 'via b' } });
    expect(answer).toMatchObject({ online: 1, queued: 0 });
    await waitFor(() => d.received.length === 1);
    expect(d.received[0]?.id).toBe(answer.id);
    await waitFor(async () => (await getJson(b.url, `/v1/notifications/${answer.id}`)).targets[0].status === 'delivered');
  });

  it('keeps every key of data across instances, __proto__ and constructor included', async () => {
    const d = await device(a, 'cross-keys');
    const body = '{"deviceIds":["cross-keys"],"data":{"__proto__":{"x":1},"a":1,"constructor":2,"toString":"s"}}';
    const res = await api(b.url, '/v1/notifications', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    await waitFor(() => d.received.length === 1);
    // Compared as JSON texts: the socket's parser, like JSON.parse, keeps __proto__ as an own key.
    expect(JSON.stringify(d.received[0]?.data)).toBe('{"__proto__":{"x":1},"a":1,"constructor":2,"toString":"s"}');
  });

  it('reaches topic subscribers on every instance', async () => {
    const onA = await device(a, 'topic-a', { topics: ['news'] });
    const onB = await device(b, 'topic-b', { topics: ['news'] });
    for (const d of [onA, onB]) expect(await d.socket.timeout(2_000).emitWithAck('subscribe', { topics: ['news'] })).toMatchObject({ ok: true });
    const answer = await publish(a, { topic: 'news', data: { text: 'extra' } });
    expect(answer).toMatchObject({ online: 2 });
    await waitFor(() => onA.received.length === 1 && onB.received.length === 1);
  });

  it('replaces a session across instances; the old instance never removes the new presence', async () => {
    const old = await device(a, 'roamer');
    const replaced = nextEvent<Json>(old.socket, 'session_replaced');
    const closed = nextEvent<string>(old.socket, 'disconnect');
    const fresh = await device(b, 'roamer');
    expect(await replaced).toMatchObject({ sessionId: old.ready.sessionId });
    expect(await closed).toBe('io server disconnect');
    // gw-a lowers this gauge right before it asks the store to end the old session; its next
    // store read (the GET below) goes over the same Redis connection, after that request.
    await waitFor(async () => (await metric(a.url, 'push_gateway_connected_devices')) === 0);
    expect(await getJson(a.url, '/v1/devices/roamer')).toMatchObject({ online: true, instanceId: 'gw-b' });
    expect(await presenceOf('roamer')).toBe(fresh.ready.sessionId);
  });

  it('reports per-instance counts in GET /v1/presence', async () => {
    await device(a, 'count-a');
    await device(b, 'count-b1');
    await device(b, 'count-b2');
    await waitFor(async () => {
      const body = await getJson(a.url, '/v1/presence');
      const byId = Object.fromEntries((body.instances as Json[]).map((i) => [i.instanceId, i.online]));
      return byId['gw-a'] === 1 && byId['gw-b'] === 2 && body.online === 3;
    });
  });

  it('survives kill -9 of an instance: its devices reconnect elsewhere and none stays online as a ghost', async () => {
    const c = await startGateway('gw-c', env);
    gateways.push(c);
    const movers = await Promise.all(['mover-1', 'mover-2'].map((id) => device(c, id)));
    await device(c, 'ghost', { beat: false }); // a device that dies with the instance and never comes back
    // A load balancer would send the reconnects to a live instance: the clients do that here.
    const moved = movers.map(
      (m, i) => new Promise<Json>((resolve) => m.socket.once('disconnect', () => void device(b, `mover-${i + 1}`).then(resolve))),
    );
    c.process.child.kill('SIGKILL');
    const after = await Promise.all(moved);
    for (const [i, m] of after.entries()) expect(await presenceOf(`mover-${i + 1}`)).toBe(m.ready.sessionId);
    // ttl (1000 ms) + sweep (100 ms) + slack: the survivors' sweepers retire the ghost.
    await waitFor(async () => (await getJson(a.url, '/v1/devices/ghost')).online === false, 2_500);
    await waitFor(async () => (await redis.zscore(`${testKeys(prefix).of('ghost')}presence:expiry`, 'ghost')) === null, 500);
    expect(await presenceOf('ghost')).toBeNull();
    await waitFor(async () => !(await getJson(a.url, '/v1/presence')).instances.some((i: Json) => i.instanceId === 'gw-c'), 3_000);
  });

  it('drains on SIGTERM: every device is told to reconnect and may land elsewhere, its presence and the instance entry go at once, the process exits in time', async () => {
    // Presence that lives a minute and an instance record that lives 15 s: whatever is gone
    // right after the exit was removed by the drain, not by a TTL.
    const d = await startGateway('gw-d', { ...env, HEARTBEAT_INTERVAL_MS: '25000', SWEEP_INTERVAL_MS: '5000' });
    gateways.push(d);
    const mover = await device(d, 'drained');
    const leavers = ['drain-2', 'drain-3'];
    const all = [mover, ...(await Promise.all(leavers.map((id) => device(d, id))))];
    expect(await Promise.all(leavers.map((id) => redis.exists(deviceKey(prefix, 'presence', id))))).toEqual([1, 1]);
    expect(await redis.exists(`${testKeys(prefix).control}instance:gw-d`)).toBe(1);
    const hints = all.map((x) => nextEvent<Json>(x.socket, 'server_draining'));
    const closes = all.map((x) => nextEvent<string>(x.socket, 'disconnect'));
    // A load balancer would send the reconnect to a live instance: the client does that here.
    const reconnected = new Promise<Json>((resolve) => mover.socket.once('disconnect', () => void device(a, 'drained').then(resolve)));
    const started = Date.now();
    d.process.child.kill('SIGTERM');
    for (const hint of await Promise.all(hints)) expect(hint).toEqual({ instanceId: 'gw-d', reconnect: true });
    expect(await Promise.all(closes)).toEqual(['transport close', 'transport close', 'transport close']);
    const back = await reconnected;
    expect(await d.process.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await presenceOf('drained')).toBe(back.ready.sessionId);
    for (const id of leavers) {
      expect(await presenceOf(id)).toBeNull();
      expect(await redis.zscore(`${testKeys(prefix).of(id)}presence:expiry`, id)).toBeNull();
      expect(await redis.hget(deviceKey(prefix, 'device', id), 'sessionId')).toBeNull();
    }
    // The registry is a key per instance plus a zset of ids (presence.scripts.ts).
    expect(await redis.exists(`${testKeys(prefix).control}instance:gw-d`)).toBe(0);
    expect(await redis.zscore(`${testKeys(prefix).control}instances`, 'gw-d')).toBeNull();
    expect((await getJson(a.url, '/v1/presence')).instances.map((i: Json) => i.instanceId)).not.toContain('gw-d');
  });

  it('lets a REST request in flight at SIGTERM finish, while new ones are turned away', async () => {
    const e = await startGateway('gw-e', env);
    gateways.push(e);
    const body = JSON.stringify({ deviceIds: ['in-flight'], data: { text: 'x'.repeat(200) }, ttl: 60 });
    const { port } = new URL(e.url);
    const raw = connect(Number(port), '127.0.0.1');
    let response = '';
    raw.on('data', (chunk) => (response += chunk.toString()));
    const ended = new Promise((resolve) => raw.on('close', resolve));
    await new Promise((resolve) => raw.once('connect', resolve));
    // With Expect: 100-continue the server answers once it has parsed the headers: from then on
    // the request is in flight, its body not yet sent.
    raw.write(
      `POST /v1/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    await waitFor(() => response.startsWith('HTTP/1.1 100 Continue\r\n\r\n'));
    raw.write(body.slice(0, 50));
    e.process.child.kill('SIGTERM');
    // New requests are turned away (503, or no longer listening) while this one is still open.
    await waitFor(async () => {
      const res = await fetch(`${e.url}/v1/presence`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } }).catch(() => null);
      return res === null || res.status === 503;
    });
    expect(e.process.child.exitCode).toBeNull();
    raw.write(body.slice(50)); // no half-close: the response comes back on this connection
    await ended;
    const final = response.slice('HTTP/1.1 100 Continue\r\n\r\n'.length);
    expect(final).toMatch(/^HTTP\/1.1 202/);
    expect(final).toMatch(/"queued":1/);
    expect(await e.process.exited).toBe(0);
  });
});
