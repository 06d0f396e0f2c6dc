import { BadRequestException, PayloadTooLargeException, UnprocessableEntityException } from '@nestjs/common';
import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { FakeDeviceChannel } from '../channel/fake-device-channel';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { CreateNotificationRequest } from './create-notification.dto';
import { DeliveryService } from './delivery.service';
import { MemoryNotificationStore } from './memory-notification.store';
import { NotificationsService } from './notifications.service';
import { FallbackService } from '../push/fallback.service';
import { createPushSender } from '../push/providers/create-push-sender';

const config = loadConfig({ MAX_PAYLOAD_BYTES: '512', ACK_TIMEOUT_MS: '3000', INSTANCE_ID: 'gw-a' });

describe('NotificationsService', () => {
  let clock: FakeClock;
  let presence: MemoryPresenceStore;
  let store: MemoryNotificationStore;
  let channel: FakeDeviceChannel;
  let service: NotificationsService;
  let delivery: DeliveryService;

  const ctx = { apiKeyId: 'key-1' };
  const dto = (fields: Partial<CreateNotificationRequest>): CreateNotificationRequest => ({ data: { n: 1 }, ...fields });
  /** The device's session starts here: presence recorded, socket connected and ready (its outbox running). */
  const online = async (deviceId: string, userId = 'u1') => {
    const session = { deviceId, userId, sessionId: `s-${deviceId}` };
    await presence.connect({ ...session, instanceId: 'gw-a', now: clock.now(), interval: 1_000, ttl: 60_000 });
    const socket = channel.connect(session);
    channel.ready(socket, { ...session, heartbeat: { ...config.heartbeat, ttl: 60_000 }, serverTime: clock.now(), tokenExpiresAt: socket.data.session.tokenExpiresAt });
    await channel.idle();
    return socket;
  };
  const offline = async (deviceId: string, userId = 'u1') => {
    channel.disconnect(await online(deviceId, userId));
    await presence.disconnect([{ deviceId, userId, sessionId: `s-${deviceId}`, instanceId: 'gw-a' }], clock.now(), 'client_close');
  };
  const pushedTo = () => channel.pushes.map((p) => p.deviceId).sort();

  beforeEach(() => {
    clock = new FakeClock();
    presence = new MemoryPresenceStore(86_400_000);
    store = new MemoryNotificationStore(presence);
    channel = new FakeDeviceChannel('gw-a');
    const metrics = new MetricsService();
    const asChannel = channel as unknown as DeviceChannel;
    delivery = new DeliveryService(store, asChannel, clock, config, metrics);
    delivery.onModuleInit();
    const fallback = new FallbackService(store, createPushSender(config.pushProviders, metrics, { now: () => clock.now() }), clock, metrics);
    service = new NotificationsService(store, presence, delivery, asChannel, clock, config, metrics, fallback);
  });

  // Body rules (a target required, data an object of bounded depth) are the pipe's: create-notification.pipe.spec.ts.

  it.each([
    ['empty', ''],
    ['with a space', 'has space'],
    ['not ASCII', 'é'],
    ['of 256 characters', 'x'.repeat(256)],
  ])('refuses an Idempotency-Key %s', async (_, idempotencyKey) => {
    await online('d1');
    await expect(service.publish(dto({ deviceIds: ['d1'] }), { ...ctx, idempotencyKey })).rejects.toThrow(BadRequestException);
    expect(channel.pushes).toEqual([]);
  });

  it('accepts data, title and body up to MAX_PAYLOAD_BYTES as JSON, and answers 413 one byte over', async () => {
    await online('d1');
    const fits = 'x'.repeat(512 - '{"data":{"s":""}}'.length);
    await expect(service.publish(dto({ deviceIds: ['d1'], data: { s: fits } }), ctx)).resolves.toMatchObject({ online: 1 });
    await expect(service.publish(dto({ deviceIds: ['d1'], data: { s: `${fits}y` } }), ctx)).rejects.toThrow(PayloadTooLargeException);
    await expect(service.publish(dto({ deviceIds: ['d1'], data: { s: fits }, title: 't' }), ctx)).rejects.toThrow(PayloadTooLargeException);
    expect(channel.pushes).toHaveLength(1);
  });

  it("resolves a user to the user's known devices and a topic to its subscribers", async () => {
    await online('phone');
    await online('tablet');
    await online('other-users', 'u2');
    await online('subscriber', 'u3');
    channel.topics.set('news', ['subscriber', 'phone']);
    expect(await service.publish(dto({ userIds: ['u1'], topic: 'news' }), ctx)).toMatchObject({ online: 3, queued: 0 });
    expect(pushedTo()).toEqual(['phone', 'subscriber', 'tablet']);
  });

  it('with ttl 0 sends to online devices only; the offline ones expire at once', async () => {
    await online('on');
    await offline('off');
    const answer = await service.publish(dto({ userIds: ['u1'] }), ctx);
    expect(answer).toMatchObject({ online: 1, queued: 0 });
    expect(pushedTo()).toEqual(['on']);
    expect(channel.pushes[0]?.payload.expiresAt).toBeUndefined();
    expect((await service.status(answer.id))?.targets).toEqual([
      { deviceId: 'off', status: 'expired', updatedAt: clock.now(), reason: 'offline' },
      { deviceId: 'on', status: 'pending', updatedAt: clock.now() },
    ]);
  });

  it('with ttl > 0 queues for offline devices until the ttl runs out', async () => {
    await online('on');
    await offline('off');
    const answer = await service.publish(dto({ deviceIds: ['on', 'off'], ttl: 60 }), ctx);
    expect(answer).toMatchObject({ online: 1, queued: 1 });
    expect(pushedTo()).toEqual(['on']);
    clock.advance(59_999);
    expect((await store.pending('off', clock.now(), 10)).map((p) => p.payload.id)).toEqual([answer.id]);
    clock.advance(1);
    expect(await store.pending('off', clock.now(), 10)).toEqual([]);
  });

  it('sends the stored notification to each online device through delivery, with the ack timeout', async () => {
    await online('d1');
    await online('d2');
    const answer = await service.publish(dto({ deviceIds: ['d1', 'd2'], title: 'hi', collapseKey: 'c', ttl: 30 }), ctx);
    expect(channel.pushes).toHaveLength(2);
    for (const push of channel.pushes) {
      expect(push.timeoutMs).toBe(3_000);
      expect(push.payload).toEqual({
        id: answer.id,
        data: { n: 1 },
        title: 'hi',
        body: undefined,
        topic: undefined,
        collapseKey: 'c',
        createdAt: clock.now(),
        expiresAt: clock.now() + 30_000,
      });
    }
  });

  it('replays the first answer for the same key and body, without sending again', async () => {
    await online('d1');
    const key = { ...ctx, idempotencyKey: 'order-17' };
    const first = await service.publish(dto({ deviceIds: ['d1'], data: { a: 1, b: 2 } }), key);
    await online('d2');
    // Same body with its keys in another order: the same request.
    const again = await service.publish(dto({ data: { b: 2, a: 1 }, deviceIds: ['d1'] }), key);
    expect(again).toEqual(first);
    expect(channel.pushes).toHaveLength(1);
    const otherApiKey = await service.publish(dto({ deviceIds: ['d1'], data: { a: 1, b: 2 } }), { apiKeyId: 'key-2', idempotencyKey: 'order-17' });
    expect(otherApiKey.id).not.toBe(first.id);
  });

  it('refuses a different body under a key already used (422)', async () => {
    await online('d1');
    const key = { ...ctx, idempotencyKey: 'order-17' };
    await service.publish(dto({ deviceIds: ['d1'] }), key);
    await expect(service.publish(dto({ deviceIds: ['d1'], title: 'changed' }), key)).rejects.toThrow(UnprocessableEntityException);
    expect(channel.pushes).toHaveLength(1);
  });

  it('makes a replayed 202 mean "being sent now": the first notification goes again to pending targets online now', async () => {
    await online('d1');
    const key = { ...ctx, idempotencyKey: 'retry-after-timeout' };
    const first = await service.publish(dto({ deviceIds: ['d1'] }), key);
    await channel.pushes[0]?.noAck(); // the first send was never acked: still pending
    expect(await service.publish(dto({ deviceIds: ['d1'] }), key)).toEqual(first);
    expect(channel.pushes.map((p) => p.payload.id)).toEqual([first.id, first.id]);
    await channel.pushes[1]?.ack();
    await service.publish(dto({ deviceIds: ['d1'] }), key); // delivered now: nothing more to send
    expect(channel.pushes).toHaveLength(2);
  });

  it('after a write with an unknown outcome (503), has the targets re-read their inboxes; not after a refused one', async () => {
    const recheck = jest.spyOn(delivery, 'recheckLater').mockImplementation(() => undefined);
    jest.spyOn(store, 'publish').mockRejectedValueOnce(new StoreUnavailableError('Redis did not answer', 'unknown'));
    await expect(service.publish(dto({ deviceIds: ['d1', 'd2'] }), ctx)).rejects.toThrow(StoreUnavailableError);
    expect(recheck).toHaveBeenCalledWith(['d1', 'd2']);
    jest.spyOn(store, 'publish').mockRejectedValueOnce(new StoreUnavailableError('Redis unavailable', 'not_applied'));
    await expect(service.publish(dto({ deviceIds: ['d3'] }), ctx)).rejects.toThrow(StoreUnavailableError);
    expect(recheck).toHaveBeenCalledTimes(1);
  });
});
