import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { startRedisCluster } from './support/redis-servers';
import { FakeClock } from './support/fake-clock';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/** REDIS_CLUSTER_NODES: the same product on a real three-master Redis Cluster, two instances. */
describe('Redis Cluster mode (real cluster, two in-process instances)', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  const clock = new FakeClock(Date.now()); // shared: both instances see the same time
  let a: TestApp;
  let b: TestApp;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    // A push across instances leaves the Redis adapter a cleanup timer of ACK_TIMEOUT_MS, which
    // outlives close(): keep it short.
    const env = { REDIS_CLUSTER_NODES: cluster.spec, HEARTBEAT_INTERVAL_MS: '400', HEARTBEAT_MIN_MS: '200', SWEEP_INTERVAL_MS: '100', ACK_TIMEOUT_MS: '1000' };
    a = await startTestApp({ ...env, INSTANCE_ID: 'cl-a' }, clock);
    b = await startTestApp({ ...env, INSTANCE_ID: 'cl-b' }, clock);
  }, 30_000);
  afterAll(async () => {
    sockets.forEach((s) => s.disconnect());
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
    cluster?.kill();
  });

  it('keeps presence, delivers across instances, redelivers, and sweeps, with every key in one hash slot', async () => {
    expect(a.config.redisPrefix).toBe('{push}:');
    const socket = connectDevice(a.url, deviceToken({ sub: 'cl-user', deviceId: 'cl-dev' }));
    sockets.push(socket);
    const received: Json[] = [];
    socket.on('notification', (n: Json, ack: () => void) => (received.push(n), ack()));
    await nextEvent(socket, 'ready');
    const beat = (await socket.timeout(2_000).emitWithAck('heartbeat', { interval: 300 })) as Json;
    expect(beat).toMatchObject({ ok: true, interval: 300, ttl: 750 });

    const res = await api(b.url, '/v1/notifications', { method: 'POST', json: { userIds: ['cl-user'], data: { text: 'across' }, ttl: 60 } });
    const answer = (await res.json()) as Json;
    expect(answer).toMatchObject({ online: 1, queued: 0 });
    await waitFor(() => received.some((n) => n.id === answer.id));
    await waitFor(async () => ((await (await api(b.url, `/v1/notifications/${answer.id}`)).json()) as Json).targets[0].status === 'delivered');
    expect(await (await api(a.url, '/v1/devices/cl-dev')).json()).toMatchObject({ online: true, instanceId: 'cl-a' });
    expect(((await (await fetch(`${b.url}/health/ready`)).json()) as Json).checks).toMatchObject({ store: { mode: 'cluster' }, pubsub: { status: 'up' } });

    // Silent from now: once its TTL has passed, the sweeper (on either instance) retires it and
    // the socket is closed.
    const closed = nextEvent<string>(socket, 'disconnect');
    clock.advance(beat.ttl);
    expect(await closed).toBe('transport close');
    await waitFor(async () => ((await (await api(b.url, '/v1/devices/cl-dev')).json()) as Json).online === false);
  });
});
