import Redis from 'ioredis';
import type { Server } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import { Socket } from 'socket.io-client';
import { MetricsService } from '../src/metrics/metrics.service';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { RawDevice } from './support/raw-device';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type AckReply = { ok: boolean; error?: { code: string; message: string } };

/** Unknown events, malformed payloads, an ack nobody asked for: all count against the budget. */
const BAD_FRAMES = ['42["launch_missiles"]', '42["heartbeat",{"interval":"soon"}]', '42["subscribe","nope"]', '43999[]', '42[42]'];

/**
 * The socket event budget (SOCKET_EVENTS_PER_SECOND): every packet counts, good or bad; a socket
 * over it for 5 s in a row is ended with `rate_limited`; meanwhile other devices are served.
 */
describe('socket event budget (real app, real Redis, raw sockets)', () => {
  const redis = new Redis(testRedisUrl());
  const prefixes: string[] = [];
  const bystanders: Socket[] = [];
  const raws: RawDevice[] = [];
  let gw: TestApp | undefined;
  /** The server's end of each TCP connection, by the client's port. */
  const serverSide = new Map<number, NetSocket>();

  const start = async (env: Record<string, string>, clock?: FakeClock) => {
    const prefix = uniquePrefix('budget');
    prefixes.push(prefix);
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, ...env }, clock);
    (gw.app.getHttpServer() as Server).on('connection', (socket: NetSocket) => {
      const port = socket.remotePort ?? -1;
      serverSide.set(port, socket);
      socket.once('close', () => serverSide.get(port) === socket && serverSide.delete(port));
    });
    return gw;
  };
  const raw = async (app: TestApp, deviceId: string) => {
    const device = await RawDevice.connect(app.url, { token: deviceToken({ sub: 'budget-user', deviceId }) });
    raws.push(device);
    return device;
  };
  const bystander = async (app: TestApp, deviceId: string) => {
    const socket = connectDevice(app.url, deviceToken({ sub: 'calm-user', deviceId }));
    bystanders.push(socket);
    await nextEvent(socket, 'ready');
    return socket;
  };
  const beat = (socket: Socket) => socket.timeout(5_000).emitWithAck('heartbeat', {}) as Promise<AckReply>;
  const metric = async (app: TestApp, name: string) =>
    Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await app.app.get(MetricsService).registry.metrics())?.[1] ?? 0);
  const online = async (app: TestApp, deviceId: string) =>
    (((await (await api(app.url, `/v1/devices/${deviceId}`)).json()) as { online?: boolean }).online ?? false);
  const isOpenOnServer = (device: RawDevice) => {
    const socket = serverSide.get(device.tcp.localPort ?? -1);
    return !!socket && !socket.destroyed;
  };

  afterEach(async () => {
    bystanders.splice(0).forEach((s) => s.disconnect());
    raws.splice(0).forEach((d) => d.close());
    await gw?.close();
    gw = undefined;
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('answers a socket over budget rate_limited and ends it after 5 seconds over in a row (clock in steps)', async () => {
    const clock = new FakeClock(1_700_000_000_000); // the start of a clock second
    const app = await start({ SOCKET_EVENTS_PER_SECOND: '5' }, clock);
    const flooder = await raw(app, 'flooder');
    const calm = await bystander(app, 'calm-1');

    for (let second = 1; second <= 5; second++) {
      for (let i = 0; i < 6; i++) BAD_FRAMES.forEach((f) => flooder.send(f));
      if (second < 5) {
        // The last packet of this second asks for an ack: once it is answered, the second was counted.
        expect(await flooder.emitWithAck('launch_missiles', {})).toEqual({
          ok: false,
          error: { code: 'rate_limited', message: 'more than 5 events per second' },
        });
        expect(await beat(calm)).toMatchObject({ ok: true }); // the neighbour is served meanwhile
        clock.advance(1_000);
      }
    }
    // The fifth second over the budget ends the session: told why, then the connection is released.
    expect((await flooder.next('session_ended')).payload).toEqual({ reason: 'rate_limited', reconnect: true });
    await waitFor(() => !isOpenOnServer(flooder), 1_000, 10);
    await waitFor(async () => !(await online(app, 'flooder')), 2_000);
    expect(await metric(app, 'push_gateway_rate_limited_sockets_total')).toBe(1);
    // 31 packets a second: the first second refuses all but the burst of 10, the next three all but
    // 5 new tokens each, and the fifth ends the session at its sixth packet.
    expect(await metric(app, 'push_gateway_rate_limited_total\\{limit="socket_events"\\}')).toBe(21 + 3 * 26);

    expect(calm.connected).toBe(true);
    expect(await beat(calm)).toMatchObject({ ok: true });
    expect(await online(app, 'calm-1')).toBe(true);
  });

  it('does not end a socket that is over its budget for 4 seconds, then within it', async () => {
    const clock = new FakeClock(1_700_000_000_000);
    const app = await start({ SOCKET_EVENTS_PER_SECOND: '5' }, clock);
    const device = await raw(app, 'bursty');
    for (let second = 1; second <= 4; second++) {
      for (let i = 0; i < 10; i++) device.send(BAD_FRAMES[0] ?? '');
      expect(await device.emitWithAck('launch_missiles', {})).toMatchObject({ error: { code: 'rate_limited' } });
      clock.advance(1_000);
    }
    clock.advance(3_000); // quiet: the owed tokens are paid back
    expect(await device.emitWithAck('heartbeat', {})).toMatchObject({ ok: true });
    clock.advance(1_000);
    for (let i = 0; i < 4; i++) device.send(BAD_FRAMES[1] ?? '');
    expect(await device.emitWithAck('heartbeat', {})).toMatchObject({ ok: true });
    expect(isOpenOnServer(device)).toBe(true);
    expect(await metric(app, 'push_gateway_rate_limited_sockets_total')).toBe(0);
  });

  it("does not count a device's acks of notifications against its budget", async () => {
    const app = await start({ SOCKET_EVENTS_PER_SECOND: '2' });
    const device = await bystander(app, 'reader');
    let acked = 0;
    device.on('notification', (_n: unknown, ack: () => void) => {
      acked++;
      ack();
    });
    for (let i = 0; i < 40; i++) {
      const res = await api(app.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['reader'], data: { i }, ttl: 60 } });
      expect(res.status).toBe(202);
    }
    await waitFor(async () => (await metric(app, 'push_gateway_pushes_acked_total')) === 40, 5_000);
    expect(acked).toBe(40);
    expect(await metric(app, 'push_gateway_rate_limited_total\\{limit="socket_events"\\}')).toBe(0);
    expect(await beat(device)).toMatchObject({ ok: true });
  });

  it('does not count acks that come after the ack timeout either (one per notification sent)', async () => {
    const app = await start({ SOCKET_EVENTS_PER_SECOND: '2', ACK_TIMEOUT_MS: '200' });
    const device = await raw(app, 'late-reader');
    for (let i = 0; i < 20; i++) {
      const res = await api(app.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['late-reader'], data: { i }, ttl: 60 } });
      expect(res.status).toBe(202);
    }
    const received = [];
    for (let i = 0; i < 20; i++) received.push(await device.next('notification'));
    await waitFor(async () => (await metric(app, 'push_gateway_pushes_unacked_total')) >= 20, 5_000); // every ack is late now
    received.forEach((n) => device.ack(n)); // free
    for (let i = 0; i < 4; i++) device.send(`4399999${i}[]`); // acks nobody asked for: the whole burst of 4
    expect(await device.emitWithAck('heartbeat', {})).toMatchObject({ ok: false, error: { code: 'rate_limited' } });
    expect(await metric(app, 'push_gateway_rate_limited_total\\{limit="socket_events"\\}')).toBe(1); // the heartbeat only
  });

  it('ends a socket flooding unpaced in real time while another device keeps heartbeating and readiness answers', async () => {
    const app = await start({ SOCKET_EVENTS_PER_SECOND: '20' });
    const flooder = await raw(app, 'real-flooder');
    const calm = await bystander(app, 'calm-2');
    let dropped: string | undefined;
    calm.on('disconnect', (reason) => (dropped = reason));
    const replies: AckReply[] = [];
    const beats = setInterval(() => void beat(calm).then((r) => replies.push(r), () => replies.push({ ok: false })), 200);
    const ended = flooder.next('session_ended', 15_000);
    const flood = flooder.flood(BAD_FRAMES);
    try {
      // Backpressure: the server stops reading the flooder's connection (and reads it again later).
      const serverEnd = serverSide.get(flooder.tcp.localPort ?? -1);
      await waitFor(() => serverEnd?.isPaused() ?? false, 5_000, 2);
      await waitFor(() => replies.length >= 5, 5_000);
      const ready = await fetch(`${app.url}/health/ready`, { signal: AbortSignal.timeout(5_000) });
      expect(ready.status).toBe(200);
      expect((await ended).payload).toEqual({ reason: 'rate_limited', reconnect: true });
      const sent = await flood.done; // the connection closed under it
      expect(sent).toBeGreaterThan(10_000);
    } finally {
      flood.stop();
      clearInterval(beats);
    }
    expect(await beat(calm)).toMatchObject({ ok: true });
    expect(replies.every((r) => r.ok)).toBe(true);
    expect(dropped).toBeUndefined();
  }, 30_000);
});
