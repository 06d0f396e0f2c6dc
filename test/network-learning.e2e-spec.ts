import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, startTestApp, TestApp } from './support/app';
import { FakeClock } from './support/fake-clock';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

interface Ready {
  heartbeat: { interval: number; min: number; max: number; ttl: number; recommended?: number };
}
type Ack = { ok: boolean; interval?: number };

/**
 * Smart-heartbeat learning against abuse, on the real app (Redis store) with the gateway's clock
 * in the test's hands: a run of beats counts only if it really took its intervals, and one device
 * adds at most one sample per network per hour, so it cannot pull a network's recommendation down.
 */
describe('network learning (real app, real Redis, fake clock)', () => {
  const prefix = uniquePrefix('learning');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  const network = 'wifi:Smith-Family-Home-5G';
  let gw: TestApp;
  const sockets: Socket[] = [];

  const connect = async (deviceId: string) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'u', deviceId }), { auth: { network } });
    sockets.push(socket);
    const ready = await nextEvent<Ready>(socket, 'ready');
    return { socket, ready };
  };
  const beat = (socket: Socket, interval: number) =>
    socket.timeout(2_000).emitWithAck('heartbeat', { interval, network }) as Promise<Ack>;
  /** Three beats at `interval`, `gapMs` apart on the gateway's clock. */
  const run = async (socket: Socket, interval: number, gapMs: number) => {
    for (let i = 0; i < 3; i++) {
      if (i > 0) clock.advance(gapMs);
      expect(await beat(socket, interval)).toMatchObject({ ok: true, interval });
    }
  };
  const networkStats = async () => {
    const presence = (await (await api(gw.url, '/v1/presence')).json()) as { networks: { network: string; samples: number; recommendedInterval?: number }[] };
    return presence.networks.find((n) => n.network === network);
  };

  beforeAll(async () => {
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, SOCKET_EVENTS_PER_SECOND: '1000' }, clock);
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(async () => {
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('keeps what honest devices taught when one device floods it with short runs', async () => {
    // Four devices each held the link at 120 s for a real run.
    for (const deviceId of ['honest-1', 'honest-2', 'honest-3', 'honest-4']) {
      const { socket } = await connect(deviceId);
      await run(socket, 120_000, 120_000);
      socket.disconnect();
    }
    expect(await networkStats()).toMatchObject({ samples: 4, recommendedInterval: 120_000 });

    // One device: 32 runs at the minimum interval within 10 s (beats ~100 ms apart), each run at
    // a slightly different interval so that every run is a new one.
    const { socket: flooder } = await connect('flooder');
    for (let i = 0; i < 32; i++) await run(flooder, 5_000 + i, 100);
    expect(await networkStats()).toMatchObject({ samples: 4, recommendedInterval: 120_000 });

    // The same device, now waiting its intervals for real and reconnecting between runs: one
    // sample in the hour, however many runs and sessions.
    flooder.disconnect();
    for (let i = 0; i < 8; i++) {
      const { socket } = await connect('flooder');
      await run(socket, 5_000 + i, 5_000);
      socket.disconnect();
    }
    expect(await networkStats()).toMatchObject({ samples: 5, recommendedInterval: 120_000 });

    const { ready } = await connect('newcomer');
    expect(ready.heartbeat.recommended).toBe(120_000);
  });

  it('labels network metrics by kind and a keyed hash, never by the network key', async () => {
    clock.advance(1_001); // the per-network gauges read the store at most once per second
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const lines = metrics.split('\n').filter((l) => l.startsWith('push_gateway_network_'));
    expect(lines).toContainEqual(expect.stringMatching(/^push_gateway_network_recommended_interval_ms\{network="wifi:[0-9a-f]{8}"\} 120000$/));
    expect(metrics).not.toContain('Smith');
    expect(metrics).not.toContain('Home-5G');
  });
});
