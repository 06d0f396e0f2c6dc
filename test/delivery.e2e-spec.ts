import { Socket } from 'socket.io-client';
import { api, connectDevice, metric, metricReaches, nextEvent, pushesSettled, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { deleteKeys, deviceKey, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;
interface Received {
  payload: Json;
  ack: () => void;
}

/**
 * Reliable delivery on the real app with real Redis: inboxes, acks, redelivery, status, topics.
 * Notification TTLs run on a FakeClock; the ack timeout is Socket.IO's own (real) timer.
 * "Was not sent" is shown by order: a later notification on the same connection arrives first.
 */
describe('delivery (real app, real Redis, real sockets)', () => {
  const prefix = uniquePrefix('delivery');
  const redis = testRedis();
  const clock = new FakeClock(Date.now());
  let gw: TestApp;
  const sockets: Socket[] = [];

  /** Connects a device that records notifications and acks them only if `autoAck`. */
  const device = async (deviceId: string, opts: { userId?: string; autoAck?: boolean; topics?: string[] } = {}) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: opts.userId ?? 'user-d', deviceId, topics: opts.topics }));
    sockets.push(socket);
    const received: Received[] = [];
    socket.on('notification', (payload: Json, ack: () => void) => {
      received.push({ payload, ack });
      if (opts.autoAck ?? true) ack();
    });
    await nextEvent(socket, 'ready');
    return { socket, received };
  };
  const publish = async (json: Json, headers: Record<string, string> = {}) => {
    const res = await api(gw.url, '/v1/notifications', { method: 'POST', json, headers });
    expect(res.status).toBe(202);
    return (await res.json()) as { id: string; online: number; queued: number };
  };
  const status = async (id: string) => (await (await api(gw.url, `/v1/notifications/${id}`)).json()) as Json;
  const targetOf = async (id: string, deviceId: string) => ((await status(id)).targets as Json[]).find((t) => t.deviceId === deviceId);
  const offline = async (socket: Socket, deviceId: string) => {
    socket.disconnect();
    await waitFor(async () => (await redis.get(deviceKey(prefix, 'presence', deviceId))) === null);
  };

  beforeAll(async () => {
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, ACK_TIMEOUT_MS: '500', INBOX_MAX_SIZE: '3' }, clock);
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(async () => {
    await pushesSettled(gw.url);
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('queues for an offline device and delivers the queue in order on reconnect, then marks it delivered', async () => {
    const first = await device('queue-1');
    await offline(first.socket, 'queue-1');
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const answer = await publish({ deviceIds: ['queue-1'], data: { n }, ttl: 60 });
      expect(answer).toMatchObject({ online: 0, queued: 1 });
      ids.push(answer.id);
    }
    expect(await targetOf(ids[0]!, 'queue-1')).toMatchObject({ status: 'pending' });
    const again = await device('queue-1');
    await waitFor(() => again.received.length === 3);
    expect(again.received.map((r) => r.payload.data.n)).toEqual([1, 2, 3]);
    expect(again.received[0]!.payload).toMatchObject({ id: ids[0]!, expiresAt: expect.any(Number), createdAt: expect.any(Number) });
    await waitFor(async () => (await targetOf(ids[2]!, 'queue-1'))?.status === 'delivered');
    const s = await status(ids[0]!);
    expect(s).toEqual({ id: ids[0]!, createdAt: expect.any(Number), expiresAt: expect.any(Number), targets: [{ deviceId: 'queue-1', status: 'delivered', updatedAt: expect.any(Number) }] });
  });

  it('reaches offline known devices of a user with ttl > 0', async () => {
    const phone = await device('user-phone', { userId: 'multi' });
    const tablet = await device('user-tablet', { userId: 'multi' });
    await offline(tablet.socket, 'user-tablet');
    const answer = await publish({ userIds: ['multi'], data: { text: 'hi' }, ttl: 60 });
    expect(answer).toMatchObject({ online: 1, queued: 1 });
    await waitFor(() => phone.received.length === 1);
    const back = await device('user-tablet', { userId: 'multi' });
    await waitFor(() => back.received.length === 1);
    expect(back.received[0]!.payload.id).toBe(answer.id);
  });

  it('sends an unacked notification again, with the same id, on the next connection', async () => {
    const silent = await device('no-ack', { autoAck: false });
    const unacked = await metric(gw.url, 'push_gateway_pushes_unacked_total');
    const answer = await publish({ deviceIds: ['no-ack'], data: { text: 'important' }, ttl: 60 });
    expect(answer).toMatchObject({ online: 1, queued: 0 });
    await waitFor(() => silent.received.length === 1);
    await metricReaches(gw.url, 'push_gateway_pushes_unacked_total', unacked + 1); // the gateway stopped waiting for the ack
    expect(await targetOf(answer.id, 'no-ack')).toMatchObject({ status: 'pending' });
    await offline(silent.socket, 'no-ack');
    const again = await device('no-ack');
    await waitFor(() => again.received.length === 1);
    expect(again.received[0]!.payload.id).toBe(answer.id);
    await waitFor(async () => (await targetOf(answer.id, 'no-ack'))?.status === 'delivered');
  });

  it('never delivers an expired notification', async () => {
    const d = await device('expiring');
    await offline(d.socket, 'expiring');
    const stale = await publish({ deviceIds: ['expiring'], data: { text: 'stale soon' }, ttl: 1 });
    clock.advance(1_000); // exactly its expiry
    const later = await publish({ deviceIds: ['expiring'], data: { text: 'current' }, ttl: 60 });
    const back = await device('expiring');
    // Both were queued, oldest first: the later one arriving first means the stale one was not sent.
    await waitFor(() => back.received.length === 1);
    expect(back.received.map((r) => r.payload.id)).toEqual([later.id]);
    expect(await targetOf(stale.id, 'expiring')).toMatchObject({ status: 'expired' });
  });

  it('replaces a pending notification with a newer one of the same collapseKey', async () => {
    const d = await device('collapse');
    await offline(d.socket, 'collapse');
    const old = await publish({ deviceIds: ['collapse'], data: { score: '0-1' }, ttl: 60, collapseKey: 'match-7' });
    const fresh = await publish({ deviceIds: ['collapse'], data: { score: '1-1' }, ttl: 60, collapseKey: 'match-7' });
    const later = await publish({ deviceIds: ['collapse'], data: { text: 'after the match' }, ttl: 60 });
    expect(await targetOf(old.id, 'collapse')).toMatchObject({ status: 'replaced' });
    const back = await device('collapse');
    // The replaced one was queued first: were it sent, it would come before these two.
    await waitFor(() => back.received.length === 2);
    expect(back.received.map((r) => r.payload.id)).toEqual([fresh.id, later.id]);
    expect(back.received[0]!.payload.collapseKey).toBe('match-7');
  });

  it('keeps at most INBOX_MAX_SIZE pending per device, evicting the oldest visibly', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await publish({ deviceIds: ['full-inbox'], data: { n: i }, ttl: 60 })).id);
    expect(await targetOf(ids[0]!, 'full-inbox')).toMatchObject({ status: 'expired', reason: 'inbox_full' });
    expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(/push_gateway_inbox_evicted_total [1-9]/);
    const d = await device('full-inbox');
    await waitFor(() => d.received.length === 3);
    expect(d.received.map((r) => r.payload.id)).toEqual(ids.slice(1));
  });

  it('returns the first answer for a retried Idempotency-Key and sends only once', async () => {
    const d = await device('idem');
    const key = { 'idempotency-key': `order-${Date.now()}` };
    const first = await publish({ deviceIds: ['idem'], data: { x: 1, y: 2 } }, key);
    const retry = await publish({ data: { y: 2, x: 1 }, deviceIds: ['idem'] }, key);
    expect(retry).toEqual(first);
    // A retry that sent again would have emitted before its answer, so before this one.
    const later = await publish({ deviceIds: ['idem'], data: { text: 'next' } });
    await waitFor(() => d.received.length >= 2);
    expect(d.received.map((r) => r.payload.id)).toEqual([first.id, later.id]);
    const conflict = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['idem'], data: { text: 'other' } }, headers: key });
    expect(conflict.status).toBe(422);
    expect(await conflict.json()).toMatchObject({ statusCode: 422, message: expect.stringMatching(/Idempotency-Key/) });
  });

  it('shows expired for a ttl-0 notification to an offline device, and 404 for an unknown id', async () => {
    const answer = await publish({ deviceIds: ['never-online'], data: { n: 1 } });
    expect(answer).toMatchObject({ online: 0, queued: 0 });
    expect(await status(answer.id)).toEqual({
      id: answer.id,
      createdAt: expect.any(Number),
      targets: [{ deviceId: 'never-online', status: 'expired', reason: 'offline', updatedAt: expect.any(Number) }],
    });
    const res = await api(gw.url, '/v1/notifications/00000000-0000-0000-0000-000000000000');
    expect(res.status).toBe(404);
  });

  it('publishes to the devices subscribed to a topic now', async () => {
    const fan = await device('fan', { topics: ['sport.*'] });
    const other = await device('other', { topics: ['sport.*'] });
    expect(await fan.socket.timeout(2_000).emitWithAck('subscribe', { topics: ['sport.tennis'] })).toMatchObject({ ok: true });
    const answer = await publish({ topic: 'sport.tennis', data: { text: 'match point' } });
    expect(answer).toMatchObject({ online: 1, queued: 0 });
    await waitFor(() => fan.received.length === 1);
    expect(fan.received[0]!.payload).toMatchObject({ topic: 'sport.tennis', data: { text: 'match point' } });
    // Sent to the unsubscribed device after the topic push: arriving first, it proves that one skipped it.
    const direct = await publish({ deviceIds: ['other'], data: { text: 'direct' } });
    await waitFor(() => other.received.length >= 1);
    expect(other.received.map((r) => r.payload.id)).toEqual([direct.id]);
    await waitFor(async () => (await targetOf(answer.id, 'fan'))?.status === 'delivered');
  });

  it('targets a topic\'s subscribers as they are now: not after unsubscribe, a refresh that drops the topic, or a disconnect', async () => {
    const topic = 'league.final';
    const token = (deviceId: string, topics: string[]) => deviceToken({ sub: 'user-d', deviceId, topics });
    const [a, b, c, d] = [await device('tf-a', { topics: ['league.*'] }), await device('tf-b', { topics: ['league.*'] }), await device('tf-c', { topics: ['league.*'] }), await device('tf-d', { topics: ['league.*'] })];
    for (const x of [a, b, c, d]) expect(await x.socket.timeout(2_000).emitWithAck('subscribe', { topics: [topic] })).toMatchObject({ ok: true });
    const targets = async () => ((await status((await publish({ topic, data: {} })).id)).targets as Json[]).map((t) => t.deviceId).sort();
    expect(await targets()).toEqual(['tf-a', 'tf-b', 'tf-c', 'tf-d']);
    expect(await a.socket.timeout(2_000).emitWithAck('unsubscribe', { topics: [topic] })).toMatchObject({ ok: true });
    expect(await b.socket.timeout(2_000).emitWithAck('auth', { token: token('tf-b', ['news']) })).toMatchObject({ ok: true });
    await offline(c.socket, 'tf-c');
    expect(await targets()).toEqual(['tf-d']);
    // Subscribing again makes it a target again.
    expect(await a.socket.timeout(2_000).emitWithAck('subscribe', { topics: [topic] })).toMatchObject({ ok: true });
    expect(await targets()).toEqual(['tf-a', 'tf-d']);
  });
});
