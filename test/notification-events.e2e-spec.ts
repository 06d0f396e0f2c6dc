import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import { EventEnvelope } from '../src/events/event.types';
import { api, connectDevice, nextEvent, pushesSettled, startTestApp, TestApp, waitFor } from './support/app';
import { getJson } from './support/gateways';
import { FakeClock } from './support/fake-clock';
import { deleteKeys, testClusterNodes, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/**
 * notification.* events for real: the app on real Redis and on the embedded store, real sockets,
 * REST publishes, and the events read back through GET /v1/events. The ack deadline (500 ms) is
 * on the injected clock: it lives in the store's due-time index, not in a timer.
 */
describe.each([
  ['Redis', true],
  ['the embedded store', false],
])('events for backends: notification.* (real app on %s, real sockets)', (_store, withRedis) => {
  const prefix = uniquePrefix('notif-events');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  const sockets: Socket[] = [];
  let gw: TestApp;

  /** A device of user `nev-user` that records notifications and acks them only if `autoAck`. */
  const device = async (deviceId: string, autoAck = true) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'nev-user', deviceId }));
    sockets.push(socket);
    const received: { payload: Json; ack: () => void }[] = [];
    socket.on('notification', (payload: Json, ack: () => void) => {
      received.push({ payload, ack });
      if (autoAck) ack();
    });
    await nextEvent(socket, 'ready');
    return { socket, received };
  };
  const publish = async (json: Json) => {
    const res = await api(gw.url, '/v1/notifications', { method: 'POST', json });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  /** Every retained notification.* event of one notification, oldest first, through the pull API. */
  const eventsOf = async (notificationId: string): Promise<EventEnvelope[]> => {
    const events: EventEnvelope[] = [];
    for (let after = ''; ; ) {
      const res = await api(gw.url, `/v1/events?types=notification.*&limit=1000${after}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { events: EventEnvelope[]; next: string };
      if (page.events.length === 0) break;
      events.push(...page.events);
      after = `&after=${page.next}`;
    }
    return events.filter((e) => e.data.notificationId === notificationId);
  };
  const typesOf = async (id: string, count: number) => {
    let events: EventEnvelope[] = [];
    await waitFor(async () => (events = await eventsOf(id)).length >= count);
    return events.map((e) => [e.type, e.data]);
  };
  const offlineDevice = async (deviceId: string) => {
    const { socket } = await device(deviceId);
    socket.disconnect();
    await waitFor(async () => (await getJson<{ online: boolean }>(gw.url, `/v1/devices/${deviceId}`)).online === false);
  };

  beforeAll(async () => {
    const store = withRedis ? { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix } : { REDIS_URL: undefined };
    gw = await startTestApp({ ...store, ACK_TIMEOUT_MS: '500', INBOX_MAX_SIZE: '2' }, clock);
    expect(gw.config.redis?.mode).toBe(withRedis ? (testClusterNodes() ? 'cluster' : 'url') : undefined);
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(async () => {
    await pushesSettled(gw.url);
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('delivered: the device acks; one event with the device and its user', async () => {
    const { received } = await device('nev-ack');
    const id = await publish({ deviceIds: ['nev-ack'], data: { n: 1 } });
    expect(await typesOf(id, 1)).toEqual([['notification.delivered', { notificationId: id, deviceId: 'nev-ack', userId: 'nev-user' }]]);
    expect(received.map((r) => r.payload.id)).toEqual([id]);
  });

  it('unacked, then delivered when the ack comes late; the status ends delivered', async () => {
    const { received } = await device('nev-late', false);
    const id = await publish({ deviceIds: ['nev-late'], data: { n: 2 } });
    await waitFor(() => received.length === 1);
    const who = { notificationId: id, deviceId: 'nev-late', userId: 'nev-user' };
    // No ack within ACK_TIMEOUT_MS (on the gateway's clock): the durable deadline fires and the
    // unacked event appears (waited for, with a deadline).
    // A ttl-0 notification stays pending for that same window: its expiry (reason ttl) follows.
    clock.advance(500);
    expect(await typesOf(id, 2)).toEqual([
      ['notification.unacked', who],
      ['notification.expired', { ...who, reason: 'ttl' }],
    ]);
    received[0]!.ack();
    expect(await typesOf(id, 3)).toEqual([
      ['notification.unacked', who],
      ['notification.expired', { ...who, reason: 'ttl' }],
      ['notification.delivered', who],
    ]);
    const status = (await (await api(gw.url, `/v1/notifications/${id}`)).json()) as Json;
    expect(status.targets).toEqual([expect.objectContaining({ deviceId: 'nev-late', status: 'delivered' })]);
  });

  it('expired inbox_full: the oldest of three kept for an offline device with INBOX_MAX_SIZE 2', async () => {
    await offlineDevice('nev-full');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await publish({ deviceIds: ['nev-full'], data: { i }, ttl: 60 }));
    expect(await typesOf(ids[0]!, 1)).toEqual([
      ['notification.expired', { notificationId: ids[0], deviceId: 'nev-full', userId: 'nev-user', reason: 'inbox_full' }],
    ]);
    // The two kept are delivered when the device comes back; nothing else was recorded for them.
    await device('nev-full');
    expect(await typesOf(ids[1]!, 1)).toEqual([['notification.delivered', expect.objectContaining({ deviceId: 'nev-full' })]]);
    expect(await typesOf(ids[2]!, 1)).toEqual([['notification.delivered', expect.objectContaining({ deviceId: 'nev-full' })]]);
    expect(await eventsOf(ids[0]!)).toHaveLength(1);
  });

  it('expired offline: ttl 0 for an offline device; the online target of the same publish gets it', async () => {
    await offlineDevice('nev-off');
    await device('nev-on');
    const id = await publish({ deviceIds: ['nev-off', 'nev-on'], data: { n: 4 } });
    const events = await typesOf(id, 2);
    expect(events).toHaveLength(2);
    expect(events).toEqual(
      expect.arrayContaining([
        ['notification.expired', { notificationId: id, deviceId: 'nev-off', userId: 'nev-user', reason: 'offline' }],
        ['notification.delivered', { notificationId: id, deviceId: 'nev-on', userId: 'nev-user' }],
      ]),
    );
    // The offline one is recorded by the publish itself, before the online device could ack.
    expect(events[0]![0]).toBe('notification.expired');
  });
});
