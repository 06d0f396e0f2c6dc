import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { deviceToken } from './support/tokens';

/** Without REDIS_URL the same product runs on the in-process store (the `npm start` default). */
describe('embedded store (no REDIS_URL)', () => {
  const clock = new FakeClock(Date.now());
  const TTL = 1_000; // 2.5 x HEARTBEAT_INTERVAL_MS
  let gw: TestApp;
  const sockets: Socket[] = [];
  const connect = async (deviceId: string) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'emb-user', deviceId }));
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    return socket;
  };

  beforeAll(async () => {
    gw = await startTestApp({ HEARTBEAT_INTERVAL_MS: '400', HEARTBEAT_MIN_MS: '200', SWEEP_INTERVAL_MS: '100' }, clock);
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(() => gw.close());

  it('runs heartbeats, pushes, takeover and the sweeper like the Redis store', async () => {
    const socket = await connect('emb-1');
    expect(await socket.timeout(2_000).emitWithAck('heartbeat', { interval: 300 })).toMatchObject({ ok: true, interval: 300, ttl: 750 });

    const received = new Promise((resolve) => socket.on('notification', (n: unknown, ack: () => void) => (ack(), resolve(n))));
    const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { userIds: ['emb-user'], data: { a: 1 } } });
    expect(await res.json()).toMatchObject({ online: 1, queued: 0 });
    expect(await received).toMatchObject({ data: { a: 1 } });

    const replaced = nextEvent(socket, 'session_replaced');
    const twin = await connect('emb-1');
    await replaced;
    expect(((await (await api(gw.url, '/v1/presence')).json()) as { online: number }).online).toBe(1);

    const closed = nextEvent<string>(twin, 'disconnect');
    clock.advance(TTL); // twin never heartbeats: its presence runs out, and the sweeper closes it
    expect(await closed).toBe('transport close');
    await waitFor(async () => ((await (await api(gw.url, '/v1/devices/emb-1')).json()) as { online: boolean }).online === false);

    const queued = (await (await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['emb-1'], data: { text: 'later' }, ttl: 60 } })).json()) as { id: string; queued: number };
    expect(queued.queued).toBe(1);
    const back = connectDevice(gw.url, deviceToken({ sub: 'emb-user', deviceId: 'emb-1' }));
    sockets.push(back);
    const redelivered = await new Promise<{ id: string }>((resolve) => back.on('notification', (n: { id: string }, ack: () => void) => (ack(), resolve(n))));
    expect(redelivered.id).toBe(queued.id);
    await waitFor(async () => ((await (await api(gw.url, `/v1/notifications/${queued.id}`)).json()) as { targets: { status: string }[] }).targets[0]?.status === 'delivered');
    const ready = (await (await fetch(`${gw.url}/health/ready`)).json()) as { checks: { store: { kind: string } } };
    expect(ready.checks.store.kind).toBe('memory');
  });
});
