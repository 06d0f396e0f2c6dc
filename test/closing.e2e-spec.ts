import Redis from 'ioredis';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { MetricsService } from '../src/metrics/metrics.service';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { RawDevice } from './support/raw-device';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

const DATA = 'x'.repeat(4_000);

/**
 * "Closing means closed": whatever ends a session on the server side, the client is told why when
 * it can still read, unsent data is discarded, and the TCP connection is gone within 1 s, even for
 * a client that stopped reading with a full buffer (which would otherwise hold the close until
 * the buffer drained, or until the transport's own timeout minutes later).
 */
describe('server-side session ends release the connection at once', () => {
  const prefix = uniquePrefix('closing');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  let gw: TestApp;

  /** The server's end of each TCP connection, by the client's port. */
  const serverSide = new Map<number, Socket>();
  const isOpenOnServer = (device: { tcp: { localPort?: number } }) => {
    const socket = serverSide.get(device.tcp.localPort ?? -1);
    return !!socket && !socket.destroyed;
  };
  const metric = async (name: string) =>
    Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await gw.app.get(MetricsService).registry.metrics())?.[1] ?? 0);
  const online = async (deviceId: string) => (((await (await api(gw.url, `/v1/devices/${deviceId}`)).json()) as { online?: boolean }).online ?? false);

  /** A device that stopped reading, with its socket's buffer full of unsent notifications. */
  async function stuckDevice(deviceId: string): Promise<RawDevice> {
    const device = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'closing-user', deviceId }) });
    device.pause();
    const fullBefore = await metric('push_gateway_socket_full_total');
    // Ten POSTs at a time: a loaded machine (or a Cluster, a round trip per partition) answers each
    // in tens of ms, and it takes a few hundred of them to fill the socket.
    for (let batch = 0; (await metric('push_gateway_socket_full_total')) === fullBefore; batch++) {
      if (batch > 200) throw new Error('the socket never filled up');
      const posts = Array.from({ length: 10 }, (_, j) =>
        api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: [deviceId], data: { i: batch * 10 + j, pad: DATA }, ttl: 600 } }),
      );
      for (const res of await Promise.all(posts)) expect(res.status).toBe(202);
    }
    return device;
  }

  /** The session ends within 1 s of `end`: the connection is released and the gauge follows. */
  async function expectReleased(device: RawDevice, end: () => Promise<unknown>, gaugeChange = -1): Promise<void> {
    expect(isOpenOnServer(device)).toBe(true);
    const gauge = await metric('push_gateway_connected_devices');
    await end();
    await waitFor(() => !isOpenOnServer(device), 1_000, 10);
    await waitFor(async () => (await metric('push_gateway_connected_devices')) === gauge + gaugeChange, 1_000, 10);
  }

  beforeAll(async () => {
    gw = await startTestApp(
      { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, SWEEP_INTERVAL_MS: '50', MAX_PAYLOAD_BYTES: '8192', SLOW_CONSUMER_GRACE_MS: '600000' },
      clock,
    );
    (gw.app.getHttpServer() as Server).on('connection', (socket: Socket) => {
      const port = socket.remotePort ?? -1;
      serverSide.set(port, socket);
      socket.once('close', () => serverSide.get(port) === socket && serverSide.delete(port));
    });
  });
  afterAll(async () => {
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('presence ran out (swept): released at once although its buffer is full', async () => {
    const device = await stuckDevice('swept');
    await expectReleased(device, async () => clock.advance(63_000)); // past the 62.5 s TTL; the sweeper runs every 50 ms
    expect(await online('swept')).toBe(false);
    device.close();
  });

  it('kicked by an operator: released at once although its buffer is full', async () => {
    const device = await stuckDevice('kicked');
    await expectReleased(device, async () => expect((await api(gw.url, '/v1/devices/kicked/session', { method: 'DELETE' })).status).toBe(204));
    device.close();
  });

  it('replaced by a new connection: the old one is released at once although its buffer is full', async () => {
    const old = await stuckDevice('replaced');
    const fresh = connectDevice(gw.url, deviceToken({ sub: 'closing-user', deviceId: 'replaced' }));
    await expectReleased(old, () => nextEvent(fresh, 'ready'), 0); // one in, one out
    fresh.disconnect();
    old.close();
  });

  it('tells a client that still reads why, before closing', async () => {
    const device = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'closing-user', deviceId: 'told' }) });
    expect((await api(gw.url, '/v1/devices/told/session', { method: 'DELETE' })).status).toBe(204);
    expect((await device.next('session_ended')).payload).toEqual({ reason: 'kicked', reconnect: false });
    await device.closed;
  });
});
