import { once } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { Socket } from 'socket.io-client';
import { CREATE_NOTIFICATION_SCHEMA } from '../src/notifications/create-notification.dto';
import { api, connectDevice, metric, metricReaches, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { startRedisServer } from './support/find-redis';
import { deleteKeys, deviceKey, redisCommandsDuring as commandsDuring, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

describe('REST API (real app, real Redis)', () => {
  const prefix = uniquePrefix('rest');
  const redis = testRedis();
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
  /** Every Redis command naming this suite's keys while `act` runs (MONITOR on every master). */
  const redisCommandsDuring = (act: () => Promise<void>) => commandsDuring(redis, prefix, act);

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
        const res = await api(gw.url, path, { method, key, json: method === 'POST' ? { deviceIds: ['x'], data: {} } : undefined });
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
      const res = await post({ userIds: ['user-a'], deviceIds: ['ua-1', 'nobody'], data: { text: 'hello' } });
      expect(await res.json()).toMatchObject({ online: 2, queued: 0 });
      await waitFor(() => got.length === 2);
      expect(got.sort()).toEqual(['ua-1', 'ua-2']);
    });

    it('queues for an offline device with ttl > 0, and drops for it with ttl 0', async () => {
      let res = await post({ deviceIds: ['offline-x'], data: {}, ttl: 3600 });
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ online: 0, queued: 1 });
      res = await post({ deviceIds: ['offline-x'], data: {} });
      expect(await res.json()).toMatchObject({ online: 0, queued: 0 });
    });

    it.each([
      [{}, /one of deviceIds, userIds, topic is required.*data: data is required/],
      [{ data: {} }, /one of deviceIds, userIds, topic is required/],
      [{ deviceIds: [], data: {} }, /deviceIds: deviceIds must hold at least 1 item/],
      [{ deviceIds: 'phone-1', data: {} }, /deviceIds: deviceIds must be an array/],
      [{ deviceIds: ['bad id!'], data: {} }, /deviceIds: each item of deviceIds must be an id of 1-128 characters/],
      [{ deviceIds: ['a'] }, /data: data is required/],
      [{ deviceIds: ['a'], data: {}, ttl: -1 }, /ttl: ttl must not be less than 0/],
      [{ deviceIds: ['a'], data: {}, ttl: 1.5 }, /ttl: ttl must be an integer/],
      [{ deviceIds: ['a'], data: {}, ttl: 'soon' }, /ttl: ttl must be an integer/],
      [{ deviceIds: ['a'], data: {}, title: 7 }, /title: title must be a string/],
      [{ deviceIds: ['a'], data: {}, color: 'red' }, /color: property color should not exist/],
      [{ topic: 'bad topic', data: {} }, /topic: topic must be a topic of 1-128 characters/],
      [{ deviceIds: ['a'], data: {}, ttl: 2_419_201 }, /ttl: ttl must not be greater than 2419200/],
      [{ deviceIds: ['a'], data: {}, collapseKey: '' }, /collapseKey: collapseKey must be at least 1 character/],
      [{ userIds: ['a'.repeat(129)], data: {} }, /userIds: each item of userIds must be an id/],
    ])('answers 400 naming the field for %j', async (body, message) => {
      const res = await post(body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as Json;
      expect(json).toMatchObject({ statusCode: 400, error: 'Bad Request', fields: expect.any(Array) });
      expect(json.message).toMatch(message);
    });

    it('lists every wrong field in one 400, and collapses a bad id list into one reason', async () => {
      const res = await post({ deviceIds: Array.from({ length: 1_001 }, () => 'bad id'), data: [], ttl: -1, extra: 1, __proto__x: 2 });
      expect(res.status).toBe(400);
      const { fields } = (await res.json()) as Json;
      expect(fields).toEqual(
        expect.arrayContaining([
          { field: 'deviceIds', reasons: ['deviceIds must hold at most 1000 items', expect.stringMatching(/^each item of deviceIds must be an id/)] },
          { field: 'data', reasons: ['data must be a JSON object'] },
          { field: 'ttl', reasons: ['ttl must not be less than 0'] },
          { field: 'extra', reasons: ['property extra should not exist'] },
        ]),
      );
      expect(fields).toHaveLength(5);
    });

    it('refuses unknown top-level keys even when they are named like Object.prototype members', async () => {
      for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
        const res = await api(gw.url, '/v1/notifications', {
          method: 'POST',
          body: `{"deviceIds":["a"],"data":{},${JSON.stringify(key)}:{"x":1}}`,
          headers: { 'content-type': 'application/json' },
        });
        expect(res.status).toBe(400);
        expect(((await res.json()) as Json).fields).toEqual([{ field: key, reasons: [`property ${key} should not exist`] }]);
      }
    });

    it('answers 400 naming the header for a malformed Idempotency-Key', async () => {
      const res = await post({ deviceIds: ['a'], data: {} }, { 'idempotency-key': 'has spaces' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, fields: [{ field: 'Idempotency-Key', reasons: [expect.stringMatching(/printable/)] }] });
    });

    it('answers 400 for malformed JSON', async () => {
      const res = await api(gw.url, '/v1/notifications', { method: 'POST', body: '{"deviceIds": [', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    });

    it('answers 413 when the payload is over MAX_PAYLOAD_BYTES, or the body over the raw limit', async () => {
      const res = await post({ deviceIds: ['a'], data: { text: 'x'.repeat(2_000) } });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ statusCode: 413, error: 'Payload Too Large', message: expect.stringMatching(/MAX_PAYLOAD_BYTES is 1024/) });
      const huge = await post({ deviceIds: ['a'], data: { text: 'x'.repeat(300_000) } });
      expect(huge.status).toBe(413);
      expect(await huge.json()).toMatchObject({ statusCode: 413 });
    });
  });

  describe('data is delivered exactly', () => {
    /** The next notification on `socket`, acked, as the JSON text of its `data`. */
    const nextData = (socket: Socket) =>
      new Promise<unknown>((resolve) =>
        socket.once('notification', (n: Json, ack: () => void) => {
          ack();
          resolve(n.data);
        }),
      );
    /** `data` nested `depth` levels, objects and arrays alternating, as JSON text. */
    const nested = (depth: number) => {
      let text = '"leaf"';
      for (let level = depth; level > 0; level--) text = level % 2 ? `{"k${level}":${text}}` : `[${text}]`;
      return text;
    };
    const postText = (deviceId: string, dataText: string) =>
      api(gw.url, '/v1/notifications', {
        method: 'POST',
        body: `{"deviceIds":[${JSON.stringify(deviceId)}],"data":${dataText}}`,
        headers: { 'content-type': 'application/json' },
      });

    it('keeps keys named like Object.prototype members (row 4)', async () => {
      const socket = await device('proto-keys');
      const text = '{"toString":"a","valueOf":"b","hasOwnProperty":"c"}';
      const got = nextData(socket);
      expect((await postText('proto-keys', text)).status).toBe(202);
      expect(isDeepStrictEqual(await got, JSON.parse(text))).toBe(true);
    });

    it('keeps __proto__ and constructor keys and pollutes nothing', async () => {
      const socket = await device('proto-keys-2');
      const text = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"toJSON":"x","a":[{"__proto__":[]}]}';
      const got = nextData(socket);
      expect((await postText('proto-keys-2', text)).status).toBe(202);
      const data = await got;
      expect(isDeepStrictEqual(data, JSON.parse(text))).toBe(true);
      expect(Object.keys(data as object)).toEqual(['__proto__', 'constructor', 'toJSON', 'a']);
      expect(({} as Json).polluted).toBeUndefined();
    });

    it('answers 400 naming data for data nested 10,000 levels, and for 33 (row 5)', async () => {
      for (const depth of [10_000, 33]) {
        const res = await postText('deep', nested(depth));
        expect(res.status).toBe(400);
        const json = (await res.json()) as Json;
        expect(json).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/data.*32 levels/) });
        expect(json.fields).toEqual([{ field: 'data', reasons: [expect.stringMatching(/32 levels/)] }]);
      }
    });

    it('delivers data nested 32 levels deep-equal (row 5)', async () => {
      const socket = await device('deep-32');
      const text = nested(32);
      const got = nextData(socket);
      expect((await postText('deep-32', text)).status).toBe(202);
      expect(isDeepStrictEqual(await got, JSON.parse(text))).toBe(true);
    });

    it.each([
      ['an array', '[1]'],
      ['a string', '"x"'],
      ['a number', '1'],
      ['null', 'null'],
      ['a number JSON.parse turns into Infinity', '{"n":1e400}'],
      ['a number JSON.parse turns into -Infinity', '{"n":[-1e999]}'],
    ])('answers 400 naming data when data is %s', async (_what, text) => {
      const res = await postText('nobody', text);
      expect(res.status).toBe(400);
      expect(((await res.json()) as Json).fields).toEqual([{ field: 'data', reasons: [expect.any(String)] }]);
    });

    it('answers 404 for notification ids that are not UUIDs, without asking Redis (row 5)', async () => {
      const ids = ['seq', 'x', 'a.b', '6F1C0000-0000-0000-0000-000000000000', 'a'.repeat(2_000)];
      const commands = await redisCommandsDuring(async () => {
        for (const id of ids) {
          const res = await api(gw.url, `/v1/notifications/${id}`);
          expect(res.status).toBe(404);
          expect(await res.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'notification is not known' });
        }
      });
      expect(commands.filter((args) => args.some((a) => ids.some((id) => a.endsWith(`notif:${id}`))))).toEqual([]);
      const known = (await (await post({ deviceIds: ['nobody'], data: {} })).json()) as Json;
      expect((await api(gw.url, `/v1/notifications/${known.id}`)).status).toBe(200);
    });
  });

  describe('path ids', () => {
    const malformed = ['bad id', 'a/b', 'a'.repeat(129), 'é', '\u0000', ' '];

    it('answers 404 for device ids that are not ids, without asking Redis', async () => {
      const commands = await redisCommandsDuring(async () => {
        for (const id of malformed) {
          for (const [method, path] of [['GET', `/v1/devices/${encodeURIComponent(id)}`], ['DELETE', `/v1/devices/${encodeURIComponent(id)}/session`]] as const) {
            const res = await api(gw.url, path, { method });
            expect(res.status).toBe(404);
            expect(await res.json()).toMatchObject({ statusCode: 404, error: 'Not Found', message: expect.stringMatching(/^device is not (known|online)$/) });
          }
        }
      });
      expect(commands.filter((args) => args.some((a) => malformed.some((id) => a.endsWith(`:${id}`))))).toEqual([]);
    }, 90_000); // MONITOR on each master: its stream ran tens of seconds behind under CI's load

    it('answers 400 naming userId for a user id that is not an id', async () => {
      for (const id of malformed) {
        const res = await api(gw.url, `/v1/users/${encodeURIComponent(id)}/devices`);
        expect(res.status).toBe(400);
        expect(await res.json()).toEqual({
          statusCode: 400,
          error: 'Bad Request',
          message: expect.stringMatching(/^userId: userId must be an id/),
          fields: [{ field: 'userId', reasons: [expect.stringMatching(/^userId must be an id/)] }],
        });
      }
    });

    it('answers 400 for percent-encoding that is not UTF-8', async () => {
      for (const path of ['/v1/devices/%FF', '/v1/users/%E0%A4/devices', '/v1/notifications/%C0']) {
        const res = await api(gw.url, path);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.any(String) });
      }
    });
  });

  describe('what the JSON parser refuses', () => {
    const send = (body: string | Uint8Array, headers: Record<string, string>) => api(gw.url, '/v1/notifications', { method: 'POST', body, headers });

    it.each([
      ['invalid JSON', '{"deviceIds": [', { 'content-type': 'application/json' }, 400],
      ['a JSON scalar', '"text"', { 'content-type': 'application/json' }, 400],
      ['an unsupported charset', '{}', { 'content-type': 'application/json; charset=latin1' }, 415],
      ['an unknown content encoding', '{}', { 'content-type': 'application/json', 'content-encoding': 'bogus' }, 415],
      ['a gzip body that is not gzip', 'not gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, 400],
      ['text/plain', '{"deviceIds":["a"],"data":{}}', { 'content-type': 'text/plain' }, 415],
      ['a form', 'deviceIds=a', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
      ['a media type that only starts like JSON', '{"deviceIds":["a"],"data":{}}', { 'content-type': 'application/jsonx' }, 415],
      ['a Content-Type that is no media type', '{"deviceIds":["a"],"data":{}}', { 'content-type': ';;;' }, 415],
      ['no body at all', '', {}, 400],
    ])('answers %s with the JSON error shape and no stack', async (_what, body, headers, status) => {
      const res = await send(body, headers);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('x-powered-by')).toBeNull();
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ statusCode: status, error: expect.any(String), message: expect.any(String), ...(status === 400 && !body ? { fields: expect.any(Array) } : {}) });
      expect(text).not.toMatch(/\bat .*\.(js|ts):\d+/);
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
        ttl: expect.any(Number),
        interval: 5_000,
        lastSeenAt: expect.any(Number),
        seq: 1,
      });
      // The TTL left, as the presence key in Redis counts it down (PX set a few ms after the
      // gateway read its clock, read a few ms after the answer: close, not equal).
      const pttl = await redis.pttl(deviceKey(prefix, 'presence', 'shown'));
      expect(online.ttl).toBeLessThanOrEqual(12_500);
      expect(pttl).toBeGreaterThan(0);
      expect(Math.abs(online.ttl - pttl)).toBeLessThan(1_000);
      socket.disconnect();
      await waitFor(async () => ((await (await api(gw.url, '/v1/devices/shown')).json()) as Json).online === false);
      res = await api(gw.url, '/v1/devices/shown');
      // Presence is never delayed, but its device.offline waits PRESENCE_EVENT_GRACE_MS: `seq` is
      // the last recorded event's, so it still reads 1 (a receiver holding 1 is up to date).
      expect(await res.json()).toEqual({ deviceId: 'shown', userId: 'user-s', online: false, platform: 'ios', lastHeartbeatAt: expect.any(Number), lastSeenAt: expect.any(Number), seq: 1 });
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
      expect(await redis.get(deviceKey(prefix, 'presence', 'kicked'))).toBeNull();
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
      // The body is documented by the very schema that validates it.
      expect(doc.paths['/v1/notifications'].post.requestBody.content['application/json'].schema).toEqual(CREATE_NOTIFICATION_SCHEMA);
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
      const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['a'], data: {}, ttl: 60 } });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
      const ready = await fetch(`${gw.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { store: { status: 'down' } } });
      back = await startRedisServer(own.port);
      await waitFor(async () => (await fetch(`${gw.url}/health/ready`)).status === 200, 10_000, 200);
      const ok = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['a'], data: {}, ttl: 60 } });
      expect(ok.status).toBe(202);
      expect(await ok.json()).toMatchObject({ online: 0, queued: 1 });
    } finally {
      // The app first, while its Redis still answers: its clients quit instead of reconnecting.
      await gw.close().catch(() => undefined);
      back?.process.kill('SIGKILL');
    }
  });
});
