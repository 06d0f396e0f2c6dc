import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import { RedisEventLog } from '../src/events/redis-event-log';
import { EventEnvelope } from '../src/events/event.types';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { RawDevice } from './support/raw-device';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

interface Page {
  events: EventEnvelope[];
  next: string;
}

const DAY = 86_400_000;

async function page(url: string, query = ''): Promise<Page> {
  const res = await api(url, `/v1/events${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

/** Every retained event, paged through with `next`. */
async function allEvents(url: string, query = ''): Promise<EventEnvelope[]> {
  const events: EventEnvelope[] = [];
  let after = '';
  for (;;) {
    const p = await page(url, `?limit=1000${query}${after}`);
    if (p.events.length === 0) return events;
    events.push(...p.events);
    after = `&after=${p.next}`;
  }
}

/** Waits for the device.offline of `deviceId` in the pull API and returns its data. */
async function offlineEvent(url: string, deviceId: string, timeoutMs = 5_000): Promise<Record<string, unknown>> {
  let found: EventEnvelope | undefined;
  await waitFor(async () => !!(found = (await allEvents(url, '&types=device.offline')).find((e) => e.data.deviceId === deviceId)), timeoutMs);
  return found!.data;
}

/**
 * Each device.offline reason produced for real: real sockets against the real app on Redis, time
 * moved by a FakeClock where the cause is time.
 */
describe('events for backends: every offline reason, for real', () => {
  const prefix = uniquePrefix('events');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  const sockets: Socket[] = [];
  const raws: RawDevice[] = [];
  let gw: TestApp;

  const device = async (deviceId: string, token = deviceToken({ sub: 'ev-user', deviceId })) => {
    const socket = connectDevice(gw.url, token);
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    return socket;
  };

  beforeAll(async () => {
    gw = await startTestApp(
      {
        REDIS_URL: testRedisUrl(),
        REDIS_PREFIX: prefix,
        SWEEP_INTERVAL_MS: '50',
        TOKEN_EXPIRY_GRACE_MS: '0',
        SOCKET_EVENTS_PER_SECOND: '5',
        SOCKET_MAX_BUFFERED_BYTES: '16384',
        SLOW_CONSUMER_GRACE_MS: '1000',
      },
      clock,
    );
  });
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.disconnect());
    raws.splice(0).forEach((d) => d.close());
  });
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('client_close: the device disconnects; online and offline with growing seq, user.* around them; GET /v1/devices shows the seq', async () => {
    const socket = await device('ev-close');
    socket.disconnect();
    const offline = await offlineEvent(gw.url, 'ev-close');
    expect(offline).toMatchObject({ deviceId: 'ev-close', userId: 'ev-user', instanceId: gw.config.instanceId, reason: 'client_close', seq: 2 });
    const mine = (await allEvents(gw.url)).filter((e) => e.data.deviceId === 'ev-close' || e.data.userId === 'ev-user');
    expect(mine.map((e) => e.type)).toEqual(['device.online', 'user.online', 'device.offline', 'user.offline']);
    expect(mine[0]!.data).toMatchObject({ deviceId: 'ev-close', sessionId: offline.sessionId, seq: 1 });
    expect(await getJson(gw.url, '/v1/devices/ev-close')).toMatchObject({ online: false, seq: 2 });
    expect((await getJson<{ devices: { seq: number }[] }>(gw.url, '/v1/users/ev-user/devices')).devices).toEqual([expect.objectContaining({ seq: 2 })]);
  });

  it('kicked: DELETE /v1/devices/:id/session', async () => {
    await device('ev-kick');
    expect((await api(gw.url, '/v1/devices/ev-kick/session', { method: 'DELETE' })).status).toBe(204);
    expect(await offlineEvent(gw.url, 'ev-kick')).toMatchObject({ reason: 'kicked', seq: 2 });
  });

  it('replaced: a second connection of the device; the old offline comes first with the lower seq', async () => {
    const old = await device('ev-replace');
    const replacedNotice = nextEvent(old, 'session_replaced');
    await device('ev-replace');
    await replacedNotice;
    const events = (await allEvents(gw.url, '&types=device.*')).filter((e) => e.data.deviceId === 'ev-replace');
    expect(events.map((e) => [e.type, e.data.reason, e.data.seq])).toEqual([
      ['device.online', undefined, 1],
      ['device.offline', 'replaced', 2],
      ['device.online', undefined, 3],
    ]);
  });

  it('token_expired: the token runs out (no grace) and the sweep ends the session', async () => {
    const seconds = Math.floor(clock.now() / 1000);
    const socket = await device('ev-token', deviceToken({ sub: 'ev-user', deviceId: 'ev-token', iat: seconds, exp: seconds + 5 }, {}));
    const ended = nextEvent(socket, 'session_ended');
    clock.advance(6_000);
    expect(await ended).toMatchObject({ reason: 'token_expired' });
    expect(await offlineEvent(gw.url, 'ev-token')).toMatchObject({ reason: 'token_expired' });
  });

  it('rate_limited: a socket over its event budget for 5 s in a row', async () => {
    const flooder = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'ev-user', deviceId: 'ev-flood' }) });
    raws.push(flooder);
    for (let second = 1; second <= 5; second++) {
      for (let i = 0; i < 30; i++) flooder.send('42["launch_missiles"]');
      if (second < 5) {
        // Answered once the server has counted this second's packets.
        expect(await flooder.emitWithAck('launch_missiles', {})).toMatchObject({ ok: false, error: { code: 'rate_limited' } });
        clock.advance(1_000);
      }
    }
    expect((await flooder.next('session_ended')).payload).toMatchObject({ reason: 'rate_limited' });
    expect(await offlineEvent(gw.url, 'ev-flood')).toMatchObject({ reason: 'rate_limited' });
  });

  it('slow_consumer: a device that stops reading stays full past SLOW_CONSUMER_GRACE_MS', async () => {
    const stuck = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'ev-user', deviceId: 'ev-slow' }) });
    raws.push(stuck);
    stuck.pause();
    const pad = 'x'.repeat(3_000);
    for (let i = 0; i < 40; i++) {
      const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['ev-slow'], data: { i, pad }, ttl: 600 } });
      expect(res.status).toBe(202);
    }
    // The socket is full by now (40 x 3 KB against a 16 KB budget); its grace runs on the app's clock.
    clock.advance(1_000);
    expect(await offlineEvent(gw.url, 'ev-slow')).toMatchObject({ reason: 'slow_consumer' });
  });

  it('heartbeat_timeout: a silent device is swept after its TTL', async () => {
    await device('ev-silent');
    clock.advance(63_000); // past the 62.5 s TTL of the default interval
    expect(await offlineEvent(gw.url, 'ev-silent')).toMatchObject({ reason: 'heartbeat_timeout', seq: 2 });
  });

  it('server_shutdown: the drain ends every session here', async () => {
    await device('ev-drain');
    await gw.close();
    const log = new RedisEventLog(redis, prefix, DAY);
    const events = await log.read(undefined, 1_000, clock.now());
    expect(events.find((e) => e.type === 'device.offline' && e.data.deviceId === 'ev-drain')?.data).toMatchObject({ reason: 'server_shutdown', seq: 2 });
    // Every session above ended once, each with its reason.
    const offline = events.filter((e) => e.type === 'device.offline').map((e) => `${e.data.deviceId as string}:${e.data.reason as string}`);
    expect(offline.sort()).toEqual(
      [
        'ev-close:client_close',
        'ev-kick:kicked',
        'ev-replace:replaced',
        'ev-replace:client_close', // the session that took over, closed by the test
        'ev-token:token_expired',
        'ev-flood:rate_limited',
        'ev-slow:slow_consumer',
        'ev-silent:heartbeat_timeout',
        'ev-drain:server_shutdown',
      ].sort(),
    );
  });
});

describe('events for backends: instance_lost (kill -9 of a gateway process)', () => {
  const prefix = uniquePrefix('events-lost');
  const redis = new Redis(testRedisUrl());
  const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix };
  const gateways: RunningGateway[] = [];
  let socket: Socket | undefined;

  afterAll(async () => {
    socket?.disconnect();
    for (const g of gateways) if (g.process.child.exitCode === null) g.process.child.kill('SIGKILL');
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it("another instance's sweeper ends the dead instance's sessions with instance_lost", async () => {
    const [survivor, doomed] = await Promise.all([startGateway('gw-survivor', env), startGateway('gw-doomed', env)]);
    gateways.push(survivor, doomed);
    socket = connectDevice(doomed.url, deviceToken({ sub: 'lost-user', deviceId: 'lost-1' }));
    await nextEvent(socket, 'ready');
    doomed.process.child.kill('SIGKILL');
    const offline = await offlineEvent(survivor.url, 'lost-1', 15_000);
    expect(offline).toMatchObject({ reason: 'instance_lost', instanceId: 'gw-doomed', userId: 'lost-user', seq: 2 });
    const userEvents = (await allEvents(survivor.url, '&types=user.*')).filter((e) => e.data.userId === 'lost-user');
    expect(userEvents.map((e) => e.type)).toEqual(['user.online', 'user.offline']);
  });
});

describe('GET /v1/events (embedded store)', () => {
  let gw: TestApp;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    gw = await startTestApp({});
    for (const id of ['p1', 'p2', 'p3']) {
      const socket = connectDevice(gw.url, deviceToken({ sub: `pull-${id}`, deviceId: id }));
      sockets.push(socket);
      await nextEvent(socket, 'ready');
    }
    for (const s of sockets) s.disconnect();
    await waitFor(async () => (await page(gw.url, '?types=device.offline')).events.length === 3);
  });
  afterAll(() => gw.close());

  it('pages oldest first with next, and an empty page with the same next when caught up', async () => {
    const everything = (await page(gw.url, '?limit=1000')).events;
    expect(everything).toHaveLength(12); // per device: online, user.online, offline, user.offline
    expect(everything[0]).toEqual({ id: expect.any(String), type: 'device.online', timestamp: expect.any(Number), data: expect.objectContaining({ deviceId: 'p1' }) });
    const paged: EventEnvelope[] = [];
    let next: string | undefined;
    for (let i = 0; i < 10; i++) {
      const p = await page(gw.url, `?limit=5${next ? `&after=${next}` : ''}`);
      expect(typeof p.next).toBe('string');
      if (p.events.length === 0) {
        expect(p.next).toBe(next);
        break;
      }
      paged.push(...p.events);
      next = p.next;
    }
    expect(paged).toEqual(everything);
  });

  it('filters by types (names and prefix.*), and the cursor moves past what the filter skipped', async () => {
    const users = await page(gw.url, '?types=user.*');
    expect(new Set(users.events.map((e) => e.type))).toEqual(new Set(['user.online', 'user.offline']));
    expect(users.events).toHaveLength(6);
    const some = await page(gw.url, '?types=device.offline,user.online&limit=2');
    expect(some.events.map((e) => e.type)).toEqual(['user.online', 'user.online']);
    expect((await page(gw.url, '?types=notification.*')).events).toEqual([]);
    const rest = await page(gw.url, `?types=device.offline,user.online&after=${some.next}`);
    expect(rest.events.map((e) => e.type)).toEqual(['user.online', 'device.offline', 'device.offline', 'device.offline']);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['after=yesterday', 'after'],
    ['types=device.exploded', 'types'],
    ['types=*', 'types'],
    ['limit=1&limit=2', 'limit'],
  ])('answers 400 naming the field for %s', async (query, field) => {
    const res = await api(gw.url, `/v1/events?${query}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { fields: { field: string; reasons: string[] }[] };
    expect(body.fields.map((f) => f.field)).toEqual([field]);
  });

  it('needs the API key', async () => {
    expect((await api(gw.url, '/v1/events', { key: null })).status).toBe(401);
  });
});
