import { Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { FakeDeviceChannel } from '../channel/fake-device-channel';
import { NotificationPayload } from '../channel/socket-events';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { DeliveryService } from './delivery.service';
import { MemoryNotificationStore } from './memory-notification.store';

const config = loadConfig({ ACK_TIMEOUT_MS: '3000', INSTANCE_ID: 'gw-a' });
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
  const stored = async (): Promise<NotificationPayload> => {
    const payload = { id: `n${++n}`, data: { n }, createdAt: clock.now() };
    await store.publish({
      payload,
      deviceIds: ['d1'],
      effectiveExpiresAt: clock.now() + 60_000,
      keepOffline: true,
      maxInbox: 100,
      retentionMs: 86_400_000,
      now: clock.now(),
    });
    return payload;
  };
  const statusOf = async (payload: NotificationPayload) => (await store.status(payload.id, clock.now()))?.targets[0];
  const counter = async (c: Counter) => (await c.get()).values[0]?.value ?? 0;

  beforeEach(async () => {
    clock = new FakeClock();
    presence = new MemoryPresenceStore(86_400_000);
    store = new MemoryNotificationStore(presence);
    channel = new FakeDeviceChannel('gw-a');
    metrics = new MetricsService();
    delivery = new DeliveryService(store, channel as unknown as DeviceChannel, clock, config, metrics);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await presence.connect({ ...device, instanceId: 'gw-a', now: clock.now(), interval: 1_000, ttl: 60_000 });
  });

  afterEach(() => jest.restoreAllMocks());

  it('marks the target delivered when the device acks', async () => {
    const payload = await stored();
    delivery.send('d1', payload);
    expect(channel.pushes).toMatchObject([{ deviceId: 'd1', payload, timeoutMs: 3_000 }]);
    clock.advance(40);
    await channel.pushes[0].ack(40);
    expect(await statusOf(payload)).toEqual({ deviceId: 'd1', status: 'delivered', updatedAt: clock.now() });
    expect(await store.pending('d1', clock.now(), 10)).toEqual([]);
    expect((await metrics.ackLatency.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value).toBe(0.04);
  });

  it('leaves the target pending when no ack comes', async () => {
    const payload = await stored();
    delivery.send('d1', payload);
    await channel.pushes[0].noAck();
    expect(await counter(metrics.pushesUnacked)).toBe(1);
    expect(await statusOf(payload)).toMatchObject({ status: 'pending' });
    expect(await store.pending('d1', clock.now(), 10)).toEqual([payload]);
  });

  it('keeps the target pending when the ack cannot be recorded, and does not throw', async () => {
    const payload = await stored();
    jest.spyOn(store, 'ack').mockRejectedValue(new Error('connection lost'));
    delivery.send('d1', payload);
    await channel.pushes[0].ack();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining(`ack of ${payload.id} by d1 not recorded`));
    expect(await statusOf(payload)).toMatchObject({ status: 'pending' });
  });

  it('sends the pending inbox oldest first on the given socket, and settles each ack on its own', async () => {
    const first = await stored();
    clock.advance(1);
    const second = await stored();
    clock.advance(1);
    const third = await stored();
    const socket = channel.connect(device);
    const done = delivery.deliverPending(socket);
    await channel.idle();
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([first.id, second.id, third.id]);
    for (const push of channel.pushes) {
      expect(push.socket).toBe(socket);
      expect(push.timeoutMs).toBe(3_000);
    }
    await channel.pushes[0].ack();
    await channel.pushes[1].noAck();
    await channel.pushes[2].ack();
    await done;
    expect(await store.pending('d1', clock.now(), 10)).toEqual([second]);
    expect(await counter(metrics.pushesRedelivered)).toBe(3);
  });

  it('delivers the pending inbox when the channel reports a session ready', async () => {
    const payload = await stored();
    delivery.onModuleInit();
    const socket = channel.connect(device);
    const heartbeat = { ...config.heartbeat, ttl: 50_000 };
    channel.ready(socket, { ...device, heartbeat, serverTime: clock.now() });
    await channel.idle();
    expect(channel.pushes).toMatchObject([{ payload, socket }]);
  });

  it('does not throw when the pending inbox cannot be read; it stays for the next connection', async () => {
    const payload = await stored();
    jest.spyOn(store, 'pending').mockRejectedValueOnce(new Error('connection lost'));
    await expect(delivery.deliverPending(channel.connect(device))).resolves.toBeUndefined();
    expect(channel.pushes).toEqual([]);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('pending notifications of d1 not read'));
    expect(await store.pending('d1', clock.now(), 10)).toEqual([payload]);
  });
});
