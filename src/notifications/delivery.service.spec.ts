import { Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { FakeDeviceChannel } from '../channel/fake-device-channel';
import { DeviceSocket, NotificationPayload } from '../channel/socket-events';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { DeliveryService, RECHECK_DELAYS_MS } from './delivery.service';
import { MemoryNotificationStore } from './memory-notification.store';
import { Deliverable } from './notification.types';

// ACK_BATCH_WINDOW_MS 0: acks are recorded at the end of their turn (channel.idle() waits for that);
// the window itself has its own test below.
const config = loadConfig({ ACK_TIMEOUT_MS: '3000', INSTANCE_ID: 'gw-a', ACK_BATCH_WINDOW_MS: '0' });
const device = { deviceId: 'd1', userId: 'u1', sessionId: 's1' };

describe('DeliveryService', () => {
  let clock: FakeClock;
  let presence: MemoryPresenceStore;
  let store: MemoryNotificationStore;
  let channel: FakeDeviceChannel;
  let metrics: MetricsService;
  let delivery: DeliveryService;
  let warn: jest.SpyInstance;
  let n = 0;

  /** Stores a notification for d1 as NotificationsService would; kept for d1 even while offline. */
  const stored = async (): Promise<Deliverable> => {
    const payload: NotificationPayload = { id: `n${++n}`, data: { n }, createdAt: clock.now() };
    const payloadJson = JSON.stringify(payload);
    await store.publish({
      payload,
      payloadJson,
      deviceIds: ['d1'],
      effectiveExpiresAt: clock.now() + 60_000,
      keepOffline: true,
      maxInbox: 100,
      retentionMs: 86_400_000,
      now: clock.now(),
      ackDeadlineAt: clock.now() + config.ackTimeoutMs,
      fallback: 'none',
      leaseMs: 15_000,
    });
    return { payload, bytes: Buffer.byteLength(payloadJson) };
  };
  const statusOf = async (n: Deliverable) => (await store.status(n.payload.id, clock.now()))?.targets[0];
  const pendingIds = async () => (await store.pending('d1', clock.now(), 10)).map((p) => p.payload.id);
  const counter = async (c: Counter) => (await c.get()).values[0]?.value ?? 0;
  const push = (i: number) => {
    const recorded = channel.pushes[i];
    if (!recorded) throw new Error(`no push #${i}; pushed: ${channel.pushes.map((p) => p.payload.id).join(', ')}`);
    return recorded;
  };
  /** d1 connects here and its session becomes ready: its outbox starts with the inbox. */
  const ready = async (token?: { expiresAt: number; deadline: number }): Promise<DeviceSocket> => {
    const socket = channel.connect(device, token);
    const tokenExpiresAt = socket.data.session.tokenExpiresAt;
    channel.ready(socket, { ...device, heartbeat: { ...config.heartbeat, ttl: 50_000 }, serverTime: clock.now(), tokenExpiresAt });
    await channel.idle();
    return socket;
  };

  beforeEach(async () => {
    clock = new FakeClock();
    presence = new MemoryPresenceStore(86_400_000);
    store = new MemoryNotificationStore(presence);
    channel = new FakeDeviceChannel('gw-a');
    metrics = new MetricsService();
    delivery = new DeliveryService(store, channel as unknown as DeviceChannel, clock, config, metrics);
    delivery.onModuleInit();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await presence.connect({ ...device, instanceId: 'gw-a', now: clock.now(), interval: 1_000, ttl: 60_000 });
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('sends the inbox oldest first when a session becomes ready, and settles each ack on its own', async () => {
    const first = await stored();
    const second = await stored();
    const third = await stored();
    const socket = await ready();
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([first, second, third].map((x) => x.payload.id));
    expect(channel.pushes.every((p) => p.socket === socket && p.timeoutMs === 3_000)).toBe(true);
    await push(0).ack();
    await push(1).noAck();
    await push(2).ack();
    expect(await pendingIds()).toEqual([second.payload.id]);
    expect(await counter(metrics.pushesRedelivered)).toBe(3);
  });

  it('reads the inbox while the session is being recorded, sends nothing before ready, and reads again for what came meanwhile', async () => {
    const before = await stored();
    const pending = jest.spyOn(store, 'pending');
    const socket = channel.connect(device);
    channel.starting(socket); // the presence write was just issued
    expect(pending).toHaveBeenCalledTimes(1);
    await channel.idle();
    const meanwhile = await stored();
    delivery.dispatch(meanwhile, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    expect(channel.pushes).toEqual([]);
    channel.ready(socket, { ...device, heartbeat: { ...config.heartbeat, ttl: 50_000 }, serverTime: clock.now(), tokenExpiresAt: 0 });
    await channel.idle();
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([before.payload.id, meanwhile.payload.id]);
    expect(pending).toHaveBeenCalledTimes(2);
  });

  it('marks the target delivered when the device acks a live push', async () => {
    await ready();
    const n = await stored();
    delivery.dispatch(n, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    expect(channel.pushes).toMatchObject([{ deviceId: 'd1', payload: n.payload, timeoutMs: 3_000 }]);
    clock.advance(40);
    await push(0).ack(40);
    expect(await statusOf(n)).toEqual({ deviceId: 'd1', status: 'delivered', updatedAt: clock.now() });
    expect(await pendingIds()).toEqual([]);
    expect((await metrics.ackLatency.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value).toBe(0.04);
  });

  it('records the acks of one turn in one store call, and records queued acks before it reads the inbox again', async () => {
    await ready();
    const batch = [await stored(), await stored(), await stored()];
    for (const n of batch) delivery.dispatch(n, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    const ackMany = jest.spyOn(store, 'ackMany');
    const pending = jest.spyOn(store, 'pending');
    // Three acks, taken in (microtasks) but not recorded yet: that waits for the end of the turn.
    const acked = Promise.all([push(0).ack(), push(1).ack(), push(2).ack()]);
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(ackMany).not.toHaveBeenCalled();
    // Then, in the same turn, another instance asks for a recheck: the read must not find them pending.
    channel.receiveRecheck(['d1']);
    await acked;
    await channel.idle();
    expect(ackMany).toHaveBeenCalledTimes(1);
    expect(ackMany.mock.calls[0]?.[0].map((a) => a.payload.id)).toEqual(batch.map((n) => n.payload.id));
    expect(pending).toHaveBeenCalled();
    expect(ackMany.mock.invocationCallOrder[0]).toBeLessThan(pending.mock.invocationCallOrder[0] ?? 0);
    expect(channel.pushes).toHaveLength(3); // nothing sent twice
    expect(await pendingIds()).toEqual([]);
    for (const n of batch) expect(await statusOf(n)).toMatchObject({ status: 'delivered' });
  });

  it('with ACK_BATCH_WINDOW_MS, records the acks of that window in one store call, and at once when asked to (a status read)', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask', 'Date', 'performance'] });
    channel = new FakeDeviceChannel('gw-a');
    delivery = new DeliveryService(store, channel as unknown as DeviceChannel, clock, loadConfig({ ACK_TIMEOUT_MS: '3000', INSTANCE_ID: 'gw-a', ACK_BATCH_WINDOW_MS: '50' }), metrics);
    delivery.onModuleInit();
    await ready();
    const batch = [await stored(), await stored(), await stored(), await stored()];
    for (const n of batch) delivery.dispatch(n, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    const ackMany = jest.spyOn(store, 'ackMany');
    // Two acks in different turns, 49 ms apart: nothing recorded until the window ends, then both in one call.
    await push(0).ack();
    jest.advanceTimersByTime(49);
    await push(1).ack();
    expect(ackMany).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    await channel.idle();
    expect(ackMany).toHaveBeenCalledTimes(1);
    expect(ackMany.mock.calls[0]?.[0].map((a) => a.payload.id)).toEqual([batch[0]!.payload.id, batch[1]!.payload.id]);
    // The next ack opens a window of its own; a read that must see it has it recorded first.
    await push(2).ack();
    expect(ackMany).toHaveBeenCalledTimes(1);
    delivery.recordQueuedAcks();
    expect(ackMany).toHaveBeenCalledTimes(2);
    expect(await statusOf(batch[2]!)).toMatchObject({ status: 'delivered' });
    // The window's timer, when it comes, finds nothing left; a later ack still gets recorded.
    jest.advanceTimersByTime(50);
    await push(3).ack();
    jest.advanceTimersByTime(50);
    await channel.idle();
    expect(ackMany).toHaveBeenCalledTimes(3);
    expect(ackMany.mock.calls[2]?.[0].map((a) => a.payload.id)).toEqual([batch[3]!.payload.id]);
    for (const n of batch) expect(await statusOf(n)).toMatchObject({ status: 'delivered' });
  });

  it('tells the store who acked and whether the copy was sent live or read back from the inbox, for late acks too', async () => {
    const queued = await stored(); // stored while d1 is away: its session reads it back from the inbox
    await ready();
    const live = await stored();
    delivery.dispatch(live, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([queued.payload.id, live.payload.id]);
    const ackMany = jest.spyOn(store, 'ackMany');
    await push(0).ack();
    await push(1).noAck();
    await push(1).lateAck();
    await channel.idle();
    expect(ackMany.mock.calls.flatMap(([acks]) => acks)).toEqual([
      { payload: { id: queued.payload.id }, deviceId: 'd1', userId: 'u1', fromInbox: true },
      { payload: { id: live.payload.id }, deviceId: 'd1', userId: 'u1', fromInbox: false },
    ]);
  });

  it('leaves the target pending when no ack comes, or when the ack cannot be recorded', async () => {
    await ready();
    const unacked = await stored();
    delivery.dispatch(unacked, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    await push(0).noAck();
    expect(await counter(metrics.pushesUnacked)).toBe(1);
    const unrecorded = await stored();
    jest.spyOn(store, 'ackMany').mockRejectedValueOnce(new Error('connection lost'));
    delivery.dispatch(unrecorded, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    await push(1).ack();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining(`1 ack(s) not recorded (${unrecorded.payload.id} by d1)`));
    expect(await statusOf(unacked)).toMatchObject({ status: 'pending' });
    expect(await statusOf(unrecorded)).toMatchObject({ status: 'pending' });
  });

  it('leaves notification.unacked to the durable deadline (once, also for a redelivered copy), and records delivered for a late ack', async () => {
    await ready();
    const n = await stored();
    const events = async () => (await presence.events.read(undefined, 100, clock.now())).filter((e) => e.type.startsWith('notification.'));
    delivery.dispatch(n, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    await push(0).noAck();
    expect(await statusOf(n)).toMatchObject({ status: 'pending' });
    expect(await events()).toEqual([]); // the socket's own timeout only paces it
    // Sent again (another instance asked for a recheck: the inbox is read again): that copy gets its own deadline.
    const arm = jest.spyOn(store, 'armAckDeadlines');
    channel.receiveRecheck(['d1']);
    await channel.idle();
    await new Promise((r) => setImmediate(r));
    expect(arm).toHaveBeenCalledWith([{ id: n.payload.id, deviceId: 'd1' }], clock.now() + config.ackTimeoutMs, clock.now());
    await push(1).noAck();
    clock.advance(config.ackTimeoutMs);
    expect(await store.claimDue(clock.now(), 10, 15_000)).toMatchObject({ unacked: 1, jobs: [] });
    clock.advance(10);
    await push(0).lateAck();
    expect(await statusOf(n)).toEqual({ deviceId: 'd1', status: 'delivered', updatedAt: clock.now() });
    await push(1).lateAck(); // the second copy's late ack changes nothing
    expect((await events()).map((e) => [e.type, e.data])).toEqual([
      ['notification.unacked', { notificationId: n.payload.id, deviceId: 'd1', userId: 'u1' }],
      ['notification.delivered', { notificationId: n.payload.id, deviceId: 'd1', userId: 'u1' }],
    ]);
  });

  it('sends nothing to a session whose token ran out past the grace, not even before the sweeper ends it', async () => {
    await ready({ expiresAt: clock.now() + 1_000, deadline: clock.now() + 31_000 });
    const inGrace = await stored();
    clock.advance(30_999); // the token ran out, the grace has not
    delivery.dispatch(inGrace, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([inGrace.payload.id]);
    await push(0).ack();
    clock.advance(1); // the deadline
    const late = await stored();
    delivery.dispatch(late, [{ deviceId: 'd1', instanceId: 'gw-a' }]);
    expect(channel.pushes).toHaveLength(1);
    expect(await statusOf(late)).toMatchObject({ status: 'pending' }); // for the device's next session
  });

  it('hands devices on other instances to those instances, one message each, and takes deliveries routed here', async () => {
    await ready();
    const n = await stored();
    delivery.dispatch(n, [
      { deviceId: 'd1', instanceId: 'gw-a' },
      { deviceId: 'x1', instanceId: 'gw-b' },
      { deviceId: 'x2', instanceId: 'gw-b' },
      { deviceId: 'y1', instanceId: 'gw-c' },
    ]);
    expect(channel.pushes.map((p) => p.deviceId)).toEqual(['d1']);
    expect(channel.remote).toEqual([
      { instanceId: 'gw-b', delivery: { payload: n.payload, bytes: n.bytes, deviceIds: ['x1', 'x2'] } },
      { instanceId: 'gw-c', delivery: { payload: n.payload, bytes: n.bytes, deviceIds: ['y1'] } },
    ]);
    const routed = await stored();
    channel.receiveDelivery({ payload: routed.payload, bytes: routed.bytes, deviceIds: ['d1', 'not-here'] });
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([n.payload.id, routed.payload.id]);
  });

  it('after an uncertain write, reads local inboxes again and asks the other instances a few times', async () => {
    await ready();
    const written = await stored(); // stored by a publish whose answer never came
    jest.useFakeTimers();
    delivery.recheckLater(['d1', 'elsewhere']);
    await jest.advanceTimersByTimeAsync(Math.max(...RECHECK_DELAYS_MS));
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([written.payload.id]);
    expect(channel.rechecks).toEqual(RECHECK_DELAYS_MS.map(() => ['d1', 'elsewhere']));
  });

  it('keeps what it could not read for a later read, and never throws', async () => {
    const n = await stored();
    jest.useFakeTimers();
    jest.spyOn(store, 'pending').mockRejectedValueOnce(new Error('connection lost'));
    const socket = channel.connect(device);
    channel.ready(socket, { ...device, heartbeat: { ...config.heartbeat, ttl: 50_000 }, serverTime: clock.now(), tokenExpiresAt: 0 });
    await jest.advanceTimersByTimeAsync(0);
    expect(channel.pushes).toEqual([]);
    await jest.advanceTimersByTimeAsync(1_000); // RETRY_READ_MS
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([n.payload.id]);
  });
});
