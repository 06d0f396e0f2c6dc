import { Socket } from 'socket.io-client';
import { EventFloors } from '../src/events/event-floors.service';
import { RedisEventLog } from '../src/events/redis-event-log';
import { EventEnvelope, eventIdTime } from '../src/events/event.types';
import { api, connectDevice, firstEvent, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { RawDevice } from './support/raw-device';
import { deleteKeys, eventsSettled, testClusterNodes, testKeys, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
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

/** Every event recorded before the call (allEvents once eventsSettled). */
async function settledEvents(url: string, query = ''): Promise<EventEnvelope[]> {
  await eventsSettled();
  return allEvents(url, query);
}

/** Waits for the device.offline of `deviceId` in the pull API and returns its data. */
async function offlineEvent(url: string, deviceId: string, timeoutMs = 5_000): Promise<Record<string, unknown>> {
  let found: EventEnvelope | undefined;
  await waitFor(async () => !!(found = (await allEvents(url, '&types=device.offline')).find((e) => e.data.deviceId === deviceId)), timeoutMs);
  return found!.data;
}

/** A device's events in log order, as [type, reason, seq]. */
async function deviceEvents(url: string, deviceId: string): Promise<[string, unknown, unknown][]> {
  return (await allEvents(url, '&types=device.*')).filter((e) => e.data.deviceId === deviceId).map((e) => [e.type, e.data.reason, e.data.seq]);
}

async function userEvents(url: string, userId: string): Promise<string[]> {
  return (await allEvents(url, '&types=user.*')).filter((e) => e.data.userId === userId).map((e) => e.type);
}

/**
 * Each device.offline reason produced for real: real sockets against the real app on Redis, time
 * moved by a FakeClock where the cause is time. Recorded at once: the grace has its own tests below.
 */
describe('events for backends: every offline reason, for real', () => {
  const prefix = uniquePrefix('events');
  const redis = testRedis();
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
        PRESENCE_EVENT_GRACE_MS: '0',
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
    const mine = (await settledEvents(gw.url)).filter((e) => e.data.deviceId === 'ev-close' || e.data.userId === 'ev-user');
    // On a Cluster device.* and user.* are in different partitions' streams: order holds per device
    // and per user (README "Events"), and across the two by recording time, here a clock that stands still.
    if (testClusterNodes()) {
      expect(mine.map((e) => e.type).filter((t) => t.startsWith('device.'))).toEqual(['device.online', 'device.offline']);
      expect(mine.map((e) => e.type).filter((t) => t.startsWith('user.'))).toEqual(['user.online', 'user.offline']);
    } else {
      expect(mine.map((e) => e.type)).toEqual(['device.online', 'user.online', 'device.offline', 'user.offline']);
    }
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
    const events = (await settledEvents(gw.url, '&types=device.*')).filter((e) => e.data.deviceId === 'ev-replace');
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
    // No gateway is left to move the partitions' floors (a Cluster): the test moves them past the drain.
    const keys = testKeys(prefix);
    if (keys.partitions > 1) await new EventFloors(redis, keys, DAY).advance(Array.from({ length: keys.partitions }, (_, p) => p), clock.now() + 1_000);
    const log = new RedisEventLog(redis, keys, DAY);
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

describe('events for backends: instance_lost (kill -9 of a gateway process), with the default grace', () => {
  const prefix = uniquePrefix('events-lost');
  const redis = testRedis();
  // A 1.2 s interval (TTL 3 s), not the test gateways' 400 ms: the devices beat from this test
  // worker, which a loaded machine can stall for a second, and a session that runs out while its
  // instance still reports itself alive did time out (heartbeat_timeout), which is not this case.
  const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, HEARTBEAT_INTERVAL_MS: '1200' };
  const gateways: RunningGateway[] = [];
  const sockets: Socket[] = [];
  const GRACE = 5_000; // PRESENCE_EVENT_GRACE_MS' default
  const TTL = 3_000; // 2.5 x the interval
  let beating: NodeJS.Timeout | undefined;

  afterAll(async () => {
    clearInterval(beating);
    sockets.forEach((s) => s.disconnect());
    for (const g of gateways) if (g.process.child.exitCode === null) g.process.child.kill('SIGKILL');
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it("another instance ends the dead instance's sessions with instance_lost after ttl + grace, and records the offlines it held; a device back within the grace records nothing", async () => {
    const [survivor, doomed] = await Promise.all([startGateway('gw-survivor', env), startGateway('gw-doomed', env)]);
    gateways.push(survivor, doomed);
    for (const n of [1, 2, 3]) {
      const socket = connectDevice(doomed.url, deviceToken({ sub: `lost-user-${n}`, deviceId: `lost-${n}` }));
      sockets.push(socket);
      await nextEvent(socket, 'ready');
    }
    // They beat until the crash, so none of them runs out on the doomed instance before it.
    const onDoomed = setInterval(() => sockets.forEach((s) => s.connected && s.emit('heartbeat', {}, () => {})), 200);
    // lost-3 leaves cleanly just before the crash: the doomed instance held its offline (in Redis).
    sockets[2]!.disconnect();
    await waitFor(async () => (await redis.zscore(`${testKeys(prefix).of('lost-3')}heldoff:due`, 'lost-3')) !== null);
    // The crash comes right after a heartbeat of each remaining device is recorded (see env).
    const beats = await Promise.all(sockets.slice(0, 2).map((s) => s.timeout(5_000).emitWithAck('heartbeat', {})));
    expect(beats).toEqual([expect.objectContaining({ ok: true }), expect.objectContaining({ ok: true })]);
    doomed.process.child.kill('SIGKILL');
    clearInterval(onDoomed);
    // lost-2 comes back on the survivor once its presence ran out (never delayed), within the grace.
    await waitFor(async () => (await getJson<{ online: boolean }>(survivor.url, '/v1/devices/lost-2')).online === false, 10_000);
    const back = connectDevice(survivor.url, deviceToken({ sub: 'lost-user-2', deviceId: 'lost-2' }));
    sockets.push(back);
    await nextEvent(back, 'ready');
    beating = setInterval(() => back.emit('heartbeat', {}, () => {}), 200); // it stays online from here on

    // Within ttl + sweep + grace + 10 s, and not before the grace after the expiry ended.
    let offline: EventEnvelope | undefined;
    await waitFor(async () => !!(offline = (await allEvents(survivor.url, '&types=device.offline')).find((e) => e.data.deviceId === 'lost-1')), TTL + GRACE + 10_000);
    expect(offline!.data).toMatchObject({ reason: 'instance_lost', instanceId: 'gw-doomed', userId: 'lost-user-1', seq: 2 });
    expect(eventIdTime(offline!.id)).toBeGreaterThanOrEqual((offline!.data.lastSeenAt as number) + TTL + GRACE);
    expect(offline!.timestamp).toBeLessThan(eventIdTime(offline!.id)); // the time of the change, not of the release
    // user.* are recorded by a second script in the user's partition, right after the device's:
    // on a Cluster that is another stream, which the pull API may show a moment later.
    let userLog: string[] = [];
    await waitFor(async () => (userLog = await userEvents(survivor.url, 'lost-user-1')).length >= 2, 5_000).catch(() => undefined);
    expect(userLog).toEqual(['user.online', 'user.offline']);
    // The offline the dead instance held is recorded by the survivor (on a Cluster, shown once
    // every partition's floor has passed it).
    await waitFor(async () => (await deviceEvents(survivor.url, 'lost-3')).length >= 2, 5_000).catch(() => undefined);
    expect(await deviceEvents(survivor.url, 'lost-3')).toEqual([
      ['device.online', undefined, 1],
      ['device.offline', 'client_close', 2],
    ]);

    // Nothing is held any more: lost-2's offline was dropped with its online, which is not recorded either.
    await waitFor(async () => (await Promise.all(Array.from({ length: testKeys(prefix).partitions }, (_, p) => redis.zcard(`${testKeys(prefix).at(p)}heldoff:due`)))).every((n) => n === 0), 10_000);
    expect(await deviceEvents(survivor.url, 'lost-2')).toEqual([['device.online', undefined, 1]]);
    expect(await userEvents(survivor.url, 'lost-user-2')).toEqual(['user.online']);
    expect(await getJson(survivor.url, '/v1/devices/lost-2')).toMatchObject({ online: true, instanceId: 'gw-survivor', seq: 1 }); // its last recorded event
  }, 60_000);
});

describe('events for backends: flap suppression across two gateway processes on one Redis', () => {
  const prefix = uniquePrefix('events-grace');
  const redis = testRedis();
  const GRACE = 3_000;
  // Devices here do not beat: a 25 s TTL keeps them online through each test.
  const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, PRESENCE_EVENT_GRACE_MS: String(GRACE), HEARTBEAT_INTERVAL_MS: '10000' };
  const sockets: Socket[] = [];
  let gw1: RunningGateway;
  let gw2: RunningGateway;

  const device = async (url: string, deviceId: string) => {
    const socket = connectDevice(url, deviceToken({ sub: `u-${deviceId}`, deviceId }));
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    return socket;
  };
  /** Waits for the device's events to be `expected` (a later one proves nothing else came before). */
  const eventsBecome = async (url: string, deviceId: string, expected: unknown[], timeoutMs = GRACE + 10_000) => {
    await waitFor(async () => (await deviceEvents(url, deviceId)).length >= expected.length, timeoutMs).catch(() => {});
    expect(await deviceEvents(url, deviceId)).toEqual(expected);
  };

  beforeAll(async () => {
    [gw1, gw2] = await Promise.all([startGateway('gw-grace-1', env), startGateway('gw-grace-2', env)]);
  });
  afterAll(async () => {
    sockets.forEach((s) => s.disconnect());
    for (const g of [gw1, gw2]) if (g && g.process.child.exitCode === null) g.process.child.kill('SIGKILL');
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('a reconnect within the grace on the other instance records neither the offline nor the online', async () => {
    const first = await device(gw1.url, 'flap');
    first.disconnect();
    await waitFor(async () => (await getJson<{ online: boolean }>(gw2.url, '/v1/devices/flap')).online === false); // presence at once
    const second = await device(gw2.url, 'flap');
    // Presence moved at once; the seq shown is the last recorded event's: a receiver with seq 1 is up to date.
    expect(await getJson(gw1.url, '/v1/devices/flap')).toMatchObject({ online: true, instanceId: 'gw-grace-2', seq: 1 });
    // The next offline (seq 4, after its own grace) is the proof: nothing came between.
    second.disconnect();
    await eventsBecome(gw1.url, 'flap', [
      ['device.online', undefined, 1],
      ['device.offline', 'client_close', 4],
    ]);
    expect(await userEvents(gw1.url, 'u-flap')).toEqual(['user.online', 'user.offline']);
  }, 60_000);

  it('a reconnect after the grace gives the offline (recorded once the grace ended), then the online', async () => {
    const first = await device(gw1.url, 'slow-back');
    first.disconnect();
    await eventsBecome(gw2.url, 'slow-back', [
      ['device.online', undefined, 1],
      ['device.offline', 'client_close', 2],
    ]);
    const offline = (await allEvents(gw2.url, '&types=device.offline')).find((e) => e.data.deviceId === 'slow-back')!;
    expect(eventIdTime(offline.id) - offline.timestamp).toBeGreaterThanOrEqual(GRACE);
    await device(gw2.url, 'slow-back');
    await eventsBecome(gw1.url, 'slow-back', [
      ['device.online', undefined, 1],
      ['device.offline', 'client_close', 2],
      ['device.online', undefined, 3],
    ]);
    // user.* are written by the user's own step (its partition, on a Cluster), which the log can show a moment later.
    await waitFor(async () => (await userEvents(gw1.url, 'u-slow-back')).length >= 3, 10_000, 100).catch(() => undefined);
    expect(await userEvents(gw1.url, 'u-slow-back')).toEqual(['user.online', 'user.offline', 'user.online']);
  }, 60_000);

  it('two instances racing on one reconnect within the grace: seq grows, the loser is replaced before the winner comes online, user.* once', async () => {
    const first = await device(gw1.url, 'race');
    first.disconnect();
    await waitFor(async () => (await getJson<{ online: boolean }>(gw1.url, '/v1/devices/race')).online === false);
    const [a, b] = [gw1, gw2].map((g) => connectDevice(g.url, deviceToken({ sub: 'u-race', deviceId: 'race' })));
    sockets.push(a!, b!);
    await Promise.all([a, b].map((s) => firstEvent(s!, ['ready', 'session_replaced'])));
    // One of them is replaced by the other (it may have been ready first): a replaced offline, at once.
    await eventsBecome(gw2.url, 'race', [
      ['device.online', undefined, 1],
      ['device.offline', 'replaced', 4],
      ['device.online', undefined, 5],
    ]);
    const winner = (await getJson<{ instanceId: string }>(gw1.url, '/v1/devices/race')).instanceId;
    [a, b].forEach((s) => s!.disconnect());
    await eventsBecome(gw1.url, 'race', [
      ['device.online', undefined, 1],
      ['device.offline', 'replaced', 4],
      ['device.online', undefined, 5],
      ['device.offline', 'client_close', 6],
    ]);
    const events = (await allEvents(gw1.url, '&types=device.*')).filter((e) => e.data.deviceId === 'race');
    expect(events[3]!.data.instanceId).toBe(winner);
    expect(await userEvents(gw1.url, 'u-race')).toEqual(['user.online', 'user.offline']);
  }, 60_000);
});

describe('GET /v1/events (embedded store)', () => {
  let gw: TestApp;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // The grace runs in process here (the embedded store holds the offlines), on the real clock.
    gw = await startTestApp({ PRESENCE_EVENT_GRACE_MS: '500' });
    for (const id of ['p1', 'p2', 'p3']) {
      const socket = connectDevice(gw.url, deviceToken({ sub: `pull-${id}`, deviceId: id }));
      sockets.push(socket);
      await nextEvent(socket, 'ready');
    }
    for (const s of sockets) s.disconnect();
    await waitFor(async () => (await page(gw.url, '?types=device.offline')).events.length === 3, 15_000);
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
