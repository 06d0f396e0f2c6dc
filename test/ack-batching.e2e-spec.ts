import { Socket } from 'socket.io-client';
import { api, connectDevice, metricReaches, nextEvent, pushesSettled, startTestApp, TestApp, waitFor } from './support/app';
import { deleteKeys, redisCommandsDuring, testKeys, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/**
 * ACK_BATCH_WINDOW_MS on the real app, real Redis, real sockets: acks taken in within the window
 * are recorded together (one ack script call per partition, seen with MONITOR), a status read on
 * the instance that took them shows them at once, and another instance sees them once recorded.
 * The window is long here (1 s) so that "not yet recorded" can be observed; the default is 2 ms.
 */
describe('ack batching (two instances, real Redis)', () => {
  const prefix = uniquePrefix('ack-batch');
  const redis = testRedis();
  const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, ACK_BATCH_WINDOW_MS: '1000' };
  let a: TestApp;
  let b: TestApp;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    a = await startTestApp({ ...env, INSTANCE_ID: 'ab-a' });
    b = await startTestApp({ ...env, INSTANCE_ID: 'ab-b' });
  }, 30_000);
  afterAll(async () => {
    sockets.splice(0).forEach((s) => s.disconnect());
    for (const app of [a, b]) await pushesSettled(app.url).catch(() => undefined);
    for (const app of [a, b]) await app?.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  /** A device on instance A that keeps each notification's ack function, to call when the test says. */
  const device = async (deviceId: string) => {
    const socket = connectDevice(a.url, deviceToken({ sub: 'ack-user', deviceId }));
    sockets.push(socket);
    const acks: (() => void)[] = [];
    socket.on('notification', (_payload: Json, ack: () => void) => acks.push(ack));
    await nextEvent(socket, 'ready');
    return acks;
  };
  const publish = async (deviceId: string) => {
    const res = await api(a.url, '/v1/notifications', { method: 'POST', json: { deviceIds: [deviceId], data: { to: deviceId } } });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };
  const statusOn = async (app: TestApp, id: string) => {
    const res = await api(app.url, `/v1/notifications/${id}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as Json).targets[0].status as string;
  };
  const waitForPush = async (acks: (() => void)[]) => {
    await waitFor(() => acks.length > 0);
    expect(acks).toHaveLength(1);
  };

  it('records the acks of one window together, shows them at once on the instance that took them, and on another once recorded', async () => {
    const [d1, d2] = ['ab-dev-1', 'ab-dev-2'];
    const acks1 = await device(d1);
    const acks2 = await device(d2);
    const n1 = await publish(d1);
    const n2 = await publish(d2);
    await waitForPush(acks1);
    await waitForPush(acks2);
    let windowOpenFor = 0;
    const commands = await redisCommandsDuring(redis, prefix, async () => {
      const firstAck = Date.now();
      acks1[0]!();
      await metricReaches(a.url, 'push_gateway_pushes_acked_total', 1);
      // A took the ack in and holds it for the window: B reads Redis, which has not got it yet.
      const onB = await statusOn(b, n1);
      acks2[0]!();
      await metricReaches(a.url, 'push_gateway_pushes_acked_total', 2);
      windowOpenFor = Date.now() - firstAck;
      expect(onB).toBe('pending');
      // A status read on A records A's queued acks first: both, in one call per partition.
      expect(await statusOn(a, n1)).toBe('delivered');
      expect(await statusOn(a, n2)).toBe('delivered');
    });
    // Meaningful only if all of that ran inside the first ack's window (normally well under it).
    expect(windowOpenFor).toBeLessThan(1000);
    expect(await statusOn(b, n1)).toBe('delivered');
    expect(await statusOn(b, n2)).toBe('delivered');

    const keys = testKeys(prefix);
    const ackCalls = commands.filter((c) => c[0] === 'evalsha' && c[3]?.endsWith('notif:due') && (c.includes(d1) || c.includes(d2)));
    expect(ackCalls).toHaveLength(new Set([keys.of(d1), keys.of(d2)]).size);
    expect(ackCalls.flat().filter((arg) => arg === d1 || arg === d2).sort()).toEqual([d1, d2]);
  });
});
