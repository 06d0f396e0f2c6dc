import Redis from 'ioredis';
import { once } from 'node:events';
import { Socket } from 'socket.io-client';
import { api, connectDevice, metric, metricReaches, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { startRedisServer } from './support/find-redis';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

describe('REST API (real app, real Redis)', () => {
  const prefix = uniquePrefix('rest');
  const redis = new Redis(testRedisUrl());
  let gw: TestApp;
  const sockets: Socket[] = [];

  const device = async (deviceId: string, userId = 'user-1') => {
    const socket = connectDevice(gw.url, deviceToken({ sub: userId, deviceId, platform: 'ios' }));
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    return socket;
  };
  const offline = (deviceId: string) =>
    waitFor(async () => ((await (await api(gw.url, `/v1/devices/${deviceId}`)).json()) as Json).online === false);
  const post = (json: unknown, headers: Record<string, string> = {}) => api(gw.url, '/v1/notifications', { method: 'POST', json, headers });

  beforeAll(async () => {
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, HEARTBEAT_INTERVAL_MS: '5000', MAX_PAYLOAD_BYTES: '1024' });
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(async () => {
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  describe('authentication', () => {
    it.each([
      ['GET', '/v1/presence'],
      ['GET', '/v1/devices/x'],
      ['GET', '/v1/users/x/devices'],
      ['POST', '/v1/notifications'],
      ['DELETE', '/v1/devices/x/session'],
    ])('%s %s needs a valid bearer key', async (method, path) => {
      for (const key of [null, 'wrong-key-wrong-key-wrong-key']) {
        const res = await api(gw.url, path, { method, key, json: method === 'POST' ? { deviceIds: ['x'], data: 1 } : undefined });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized', message: expect.any(String) });
      }
    });
  });

  describe('POST /v1/notifications', () => {
    it('delivers to an online device, which acks it', async () => {
      const socket = await device('phone-1');
      const ackedBefore = await metric(gw.url, 'push_gateway_pushes_acked_total');
      const latenciesBefore = await metric(gw.url, 'push_gateway_push_ack_seconds_count');
      const received = new Promise<Json>((resolve) =>
        socket.on('notification', (n: Json, ack: () => void) => {
          ack();
          resolve(n);
        }),
      );
      const res = await post({ deviceIds: ['phone-1'], data: { orderId: 17 }, title: 'Hi', body: 'There', collapseKey: 'order' });
      expect(res.status).toBe(202);
      const accepted = (await res.json()) as Json;
      expect(accepted).toEqual({ id: expect.any(String), online: 1, queued: 0 });
      expect(await received).toEqual({
        id: accepted.id,
        data: { orderId: 17 },
        title: 'Hi',
        body: 'There',
        collapseKey: 'order',
        createdAt: expect.any(Number),
      });
      // The ack is counted, its latency observed, and the receipt stored.
      await metricReaches(gw.url, 'push_gateway_pushes_acked_total', ackedBefore + 1);
      expect(await metric(gw.url, 'push_gateway_push_ack_seconds_count')).toBe(latenciesBefore + 1);
      await waitFor(async () => ((await (await api(gw.url, `/v1/notifications/${accepted.id}`)).json()) as Json).targets[0].status === 'delivered');
    });

    it("reaches every online device of a user and counts only those", async () => {
      const a = await device('ua-1', 'user-a');
      const b = await device('ua-2', 'user-a');
      const c = await device('ua-3', 'user-a');
      c.disconnect();
      await offline('ua-3');
      const got: string[] = [];
      for (const [s, id] of [[a, 'ua-1'], [b, 'ua-2']] as const) s.on('notification', (_n: Json, ack: () => void) => (got.push(id), ack()));
      const res = await post({ userIds: ['user-a'], deviceIds: ['ua-1', 'nobody'], data: 'hello' });
      expect(await res.json()).toMatchObject({ online: 2, queued: 0 });
      await waitFor(() => got.length === 2);
      expect(got.sort()).toEqual(['ua-1', 'ua-2']);
    });

    it('queues for an offline device with ttl > 0, and drops for it with ttl 0', async () => {
      let res = await post({ deviceIds: ['offline-x'], data: 1, ttl: 3600 });
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ online: 0, queued: 1 });
      res = await post({ deviceIds: ['offline-x'], data: 1 });
      expect(await res.json()).toMatchObject({ online: 0, queued: 0 });
    });

    it.each([
      [{}, /at least one target|data/],
      [{ data: 1 }, /at least one target/],
      [{ deviceIds: [], data: 1 }, /deviceIds/],
      [{ deviceIds: 'phone-1', data: 1 }, /deviceIds/],
      [{ deviceIds: ['bad id!'], data: 1 }, /deviceIds must hold ids/],
      [{ deviceIds: ['a'] }, /data should not be null or undefined/],
      [{ deviceIds: ['a'], data: 1, ttl: -1 }, /ttl must not be less than 0/],
      [{ deviceIds: ['a'], data: 1, ttl: 1.5 }, /ttl must be an integer/],
      [{ deviceIds: ['a'], data: 1, ttl: 'soon' }, /ttl/],
      [{ deviceIds: ['a'], data: 1, title: 7 }, /title must be a string/],
      [{ deviceIds: ['a'], data: 1, color: 'red' }, /property color should not exist/],
      [{ topic: 'bad topic', data: 1 }, /topic must be/],
      [{ deviceIds: ['a'], data: 1, ttl: 2_419_201 }, /ttl must not be greater than 2419200/],
      [{ deviceIds: ['a'], data: 1, collapseKey: '' }, /collapseKey/],
    ])('answers 400 naming the field for %j', async (body, message) => {
      const res = await post(body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as Json;
      expect(json).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(json.message).toMatch(message);
    });

    it('answers 400 for malformed JSON', async () => {
      const res = await api(gw.url, '/v1/notifications', { method: 'POST', body: '{"deviceIds": [', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    });

    it('answers 413 when the payload is over MAX_PAYLOAD_BYTES, or the body over the raw limit', async () => {
      const res = await post({ deviceIds: ['a'], data: 'x'.repeat(2_000) });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ statusCode: 413, error: 'Payload Too Large', message: expect.stringMatching(/MAX_PAYLOAD_BYTES is 1024/) });
      const huge = await post({ deviceIds: ['a'], data: 'x'.repeat(300_000) });
      expect(huge.status).toBe(413);
      expect(await huge.json()).toMatchObject({ statusCode: 413 });
    });
  });

  describe('presence endpoints', () => {
    it('shows one device, online and then offline, and 404 for a device never seen', async () => {
      const socket = await device('shown', 'user-s');
      let res = await api(gw.url, '/v1/devices/shown');
      expect(res.status).toBe(200);
      const online = (await res.json()) as Json;
      expect(online).toEqual({
        deviceId: 'shown',
        userId: 'user-s',
        online: true,
        platform: 'ios',
        instanceId: gw.config.instanceId,
        connectedAt: expect.any(Number),
        lastHeartbeatAt: expect.any(Number),
        expiresAt: online.lastHeartbeatAt + 12_500,
        interval: 5_000,
        lastSeenAt: expect.any(Number),
      });
      socket.disconnect();
      await waitFor(async () => ((await (await api(gw.url, '/v1/devices/shown')).json()) as Json).online === false);
      res = await api(gw.url, '/v1/devices/shown');
      expect(await res.json()).toEqual({ deviceId: 'shown', userId: 'user-s', online: false, platform: 'ios', lastHeartbeatAt: expect.any(Number), lastSeenAt: expect.any(Number) });
      res = await api(gw.url, '/v1/devices/never-seen');
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
    });

    it("lists a user's devices including offline ones", async () => {
      await device('list-1', 'user-l');
      const gone = await device('list-2', 'user-l');
      gone.disconnect();
      await offline('list-2');
      const res = await api(gw.url, '/v1/users/user-l/devices');
      const body = (await res.json()) as Json;
      expect(body.userId).toBe('user-l');
      expect(body.devices.map((d: Json) => [d.deviceId, d.online]).sort()).toEqual([
        ['list-1', true],
        ['list-2', false],
      ]);
      expect(await (await api(gw.url, '/v1/users/nobody/devices')).json()).toEqual({ userId: 'nobody', devices: [] });
    });

    it('counts online devices and reports this instance', async () => {
      await device('count-1');
      await device('count-2');
      const body = (await (await api(gw.url, '/v1/presence')).json()) as Json;
      expect(body.online).toBeGreaterThanOrEqual(2);
      expect(body.instances).toEqual([{ instanceId: gw.config.instanceId, online: expect.any(Number), lastSeenAt: expect.any(Number) }]);
    });

    it('disconnects a device on DELETE /v1/devices/:id/session, 404 when not online', async () => {
      const socket = await device('kicked');
      const gone = nextEvent<string>(socket, 'disconnect');
      const res = await api(gw.url, '/v1/devices/kicked/session', { method: 'DELETE' });
      expect(res.status).toBe(204);
      expect(await gone).toBe('io server disconnect');
      expect(await redis.get(`${prefix}presence:kicked`)).toBeNull();
      expect((await api(gw.url, '/v1/devices/kicked/session', { method: 'DELETE' })).status).toBe(404);
    });
  });

  describe('operations', () => {
    it('serves liveness, readiness, metrics and OpenAPI without a key', async () => {
      expect(await (await fetch(`${gw.url}/health/live`)).json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${gw.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', checks: { store: { status: 'up', kind: 'redis' }, sweeper: { status: 'up' } } });
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      for (const name of [
        'push_gateway_connected_devices',
        'push_gateway_connections_total',
        'push_gateway_heartbeats_total',
        'push_gateway_presence_expired_total',
        'push_gateway_pushes_sent_total',
        'push_gateway_pushes_acked_total',
        'push_gateway_push_ack_seconds',
        'push_gateway_sweep_seconds',
      ]) {
        expect(metrics).toContain(`# TYPE ${name}`);
      }
      const doc = (await (await fetch(`${gw.url}/docs-json`)).json()) as Json;
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/v1/notifications', '/v1/devices/{deviceId}', '/v1/users/{userId}/devices', '/v1/presence', '/v1/devices/{deviceId}/session']),
      );
      expect((await fetch(`${gw.url}/docs`)).status).toBe(200);
    });
  });
});

describe('REST rate limit per API key', () => {
  let gw: TestApp;
  beforeAll(async () => {
    gw = await startTestApp({ API_RATE_LIMIT: '3', API_RATE_WINDOW_MS: '60000' });
  });
  afterAll(() => gw.close());

  it('answers 429 with Retry-After once a key used up its budget', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await api(gw.url, '/v1/presence');
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await last!.json()).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
    expect((await fetch(`${gw.url}/health/ready`)).status).toBe(200); // health is not limited
  });
});

describe('when Redis goes away', () => {
  it('answers 503 fast with Retry-After, turns readiness red, and recovers when Redis returns', async () => {
    const own = await startRedisServer();
    const gw = await startTestApp({ REDIS_URL: own.url, REDIS_COMMAND_TIMEOUT_MS: '500' });
    let back: Awaited<ReturnType<typeof startRedisServer>> | undefined;
    try {
      expect((await fetch(`${gw.url}/health/ready`)).status).toBe(200);
      own.process.kill('SIGKILL');
      await once(own.process, 'exit'); // gone, and its connections closed with it
      const started = Date.now();
      const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['a'], data: 1, ttl: 60 } });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
      const ready = await fetch(`${gw.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { store: { status: 'down' } } });
      back = await startRedisServer(own.port);
      await waitFor(async () => (await fetch(`${gw.url}/health/ready`)).status === 200, 10_000, 200);
      const ok = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['a'], data: 1, ttl: 60 } });
      expect(ok.status).toBe(202);
      expect(await ok.json()).toMatchObject({ online: 0, queued: 1 });
    } finally {
      // The app first, while its Redis still answers: its clients quit instead of reconnecting.
      await gw.close().catch(() => undefined);
      back?.process.kill('SIGKILL');
    }
  });
});
