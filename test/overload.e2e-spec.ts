import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, waitFor } from './support/app';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

const DEVICES = 20;
const STALL_MS = 2_500; // more than two TTLs (1 s)

/**
 * "Overload is not an outage": a gateway process that falls behind (here frozen outright with
 * SIGSTOP, the extreme of CPU starvation: nothing it received is handled) must not call its live
 * devices gone because their heartbeats waited in its own queue. Once it runs again it handles the
 * backlog first, with grace for how late it is, and nobody is expired or disconnected.
 */
describe('a gateway that falls behind (frozen with SIGSTOP) expires nobody who kept beating', () => {
  const prefix = uniquePrefix('overload');
  const redis = new Redis(testRedisUrl());
  let gw: RunningGateway;
  const sockets: Socket[] = [];
  const metric = async (name: string) =>
    Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${gw.url}/metrics`)).text())?.[1] ?? 0);

  beforeAll(async () => {
    gw = await startGateway('overload-gw', { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, HEARTBEAT_INTERVAL_MS: '400', HEARTBEAT_MIN_MS: '200', SWEEP_INTERVAL_MS: '100', LOAD_SHED_DELAY_MS: '1000' });
  });
  afterAll(async () => {
    sockets.forEach((s) => s.disconnect());
    gw.process.child.kill('SIGKILL');
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('keeps every device that beat through the stall, and sheds REST while it catches up', async () => {
    let disconnects = 0;
    // Each device beats every 400 ms from the moment it is ready, whatever happens (its acks may come late).
    const beats = setInterval(() => sockets.forEach((s) => s.emit('heartbeat', {})), 400);
    try {
      for (let i = 0; i < DEVICES; i++) {
        const socket = connectDevice(gw.url, deviceToken({ sub: 'overload-user', deviceId: `o-${i}` }));
        await nextEvent(socket, 'ready');
        sockets.push(socket);
        socket.on('disconnect', () => disconnects++);
      }
      expect(await metric('push_gateway_presence_expired_total')).toBe(0);
      await waitFor(async () => (await metric('push_gateway_heartbeats_total{result="ok"}')) >= DEVICES, 5_000);
      gw.process.child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, STALL_MS)); // the stall itself: real time must pass
      gw.process.child.kill('SIGCONT');
      // Right after it resumes it is far behind: backend requests are turned away, heartbeats are not.
      const shed = await api(gw.url, '/v1/presence');
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect(((await shed.json()) as { message: string }).message).toMatch(/overloaded/);
      expect(await metric('push_gateway_rest_shed_total')).toBeGreaterThanOrEqual(1);
      // Caught up: every heartbeat of the stall handled, later ones acked promptly again.
      const okBefore = await metric('push_gateway_heartbeats_total{result="ok"}');
      await waitFor(async () => (await metric('push_gateway_heartbeats_total{result="ok"}')) >= okBefore + 2 * DEVICES, 10_000);
      expect(await metric('push_gateway_presence_expired_total')).toBe(0);
      expect(await metric('push_gateway_heartbeats_total{result="expired"}')).toBe(0);
      expect(disconnects).toBe(0);
      // Caught up, it answers REST again: every device online.
      let presence: { online?: number } = {};
      await waitFor(async () => (presence = await getJson(gw.url, '/v1/presence')).online !== undefined, 5_000);
      expect(presence.online).toBe(DEVICES);
    } finally {
      clearInterval(beats);
    }
  }, 30_000);
});

/**
 * Past the rate one process serves, REST requests stand in a queue: a backend is told to retry
 * (503 + Retry-After) rather than kept waiting. A real queue, made small: REST_QUEUE_TARGET_MS=1,
 * and bursts of concurrent POSTs each heavy enough (200 targets kept for a minute, 3 KB of data:
 * 200 inbox entries written in its Redis call) that its own time in the app is over 1 ms on any
 * machine. The signal is a request's time in the app (RestAdmission): with one-device POSTs, a
 * fast machine answered the quickest of every window within 0.1-0.4 ms while the rest of the
 * burst waited in the kernel's socket buffers, where the app does not see it, and nothing was shed.
 */
describe('REST requests that stand in a queue are shed, not kept waiting', () => {
  const prefix = uniquePrefix('rest-queue');
  const redis = new Redis(testRedisUrl());
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway('rest-queue-gw', { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, REST_QUEUE_TARGET_MS: '1', API_RATE_LIMIT: '100000' });
  });
  afterAll(async () => {
    gw.process.child.kill('SIGKILL');
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('answers 503 with Retry-After while the queue stands, and takes requests again once it is gone', async () => {
    const json = { deviceIds: Array.from({ length: 200 }, (_, i) => `queue-dev-${i}`), ttl: 60, data: { pad: 'x'.repeat(3_000) } };
    const post = () => api(gw.url, '/v1/notifications', { method: 'POST', json });
    let shed: Response | undefined;
    const statuses = new Set<number>();
    const deadline = Date.now() + 20_000;
    while (!shed && Date.now() < deadline) {
      const burst = await Promise.all(Array.from({ length: 60 }, post));
      for (const res of burst) statuses.add(res.status);
      shed = burst.find((res) => res.status === 503);
      await Promise.all(burst.filter((res) => res !== shed).map((res) => res.arrayBuffer()));
    }
    expect(shed).toBeDefined();
    expect([...statuses].sort()).toEqual([202, 503]);
    expect(shed!.headers.get('retry-after')).toBe('1');
    expect(await shed!.json()).toEqual({ statusCode: 503, error: 'Service Unavailable', message: expect.stringMatching(/^instance overloaded \(requests took at least \d+ ms\), retry later$/) });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(Number(/^push_gateway_rest_shed_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    // One request at a time is no queue: within a window or two it is accepted again.
    let status = 0;
    await waitFor(async () => (status = (await post()).status) === 202, 5_000, 100);
    expect(status).toBe(202);
  }, 40_000);
});
