import { Socket } from 'socket.io-client';
import { connectDevice, metric, nextEvent, startTestApp, sweepsRan, TestApp, waitFor } from './support/app';
import { jest } from '@jest/globals';
import { CLIENT_EVENTS } from '../src/channel/client-events';
import { DeviceChannel } from '../src/channel/device-channel';
import { SessionService } from '../src/gateway/session.service';
import { PresenceStore } from '../src/presence/presence.store';
import { FakeClock } from './support/fake-clock';
import { deleteKeys, deviceKey, testKeys, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TEST_API_KEY, TokenClaims } from './support/tokens';

interface Ready {
  sessionId: string;
  deviceId: string;
  userId: string;
  heartbeat: { interval: number; min: number; max: number; ttl: number };
  serverTime: number;
  tokenExpiresAt: number;
}
type AckReply = { ok: boolean; error?: { code: string; message: string }; [k: string]: unknown };

const INTERVAL = 2_000;
const TTL = 5_000; // 2.5 x INTERVAL
const SWEEP = 100;

/**
 * The gateway's time runs on a FakeClock (started at the real time, so tokens signed now are
 * current): presence expires when the test moves the clock, not after real waits. Sweeps still
 * run every SWEEP ms of real time. Redis' own PX on presence:<id> is real time, which TTL
 * outlasts by far.
 */
describe('device gateway (real app, real Redis, real sockets, fake clock)', () => {
  const prefix = uniquePrefix('gateway');
  const redis = testRedis();
  const clock = new FakeClock(Date.now());
  let gw: TestApp;
  const sockets: Socket[] = [];

  const open = (claims: TokenClaims, transports?: string[]) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'user-1', ...claims }), { transports });
    sockets.push(socket);
    return socket;
  };
  const connected = async (claims: TokenClaims, transports?: string[]) => {
    const socket = open(claims, transports);
    const ready = await nextEvent<Ready>(socket, 'ready');
    return { socket, ready };
  };
  const emitAck = (socket: Socket, event: string, ...args: unknown[]) =>
    socket.timeout(2_000).emitWithAck(event, ...args) as Promise<AckReply>;
  const presenceOf = (deviceId: string) => redis.get(deviceKey(prefix, 'presence', deviceId));
  /** The expiry as the sweeper sees it (index) and as the device record holds it: they must agree. */
  const expiryOf = async (deviceId: string) => {
    const [index, record] = await Promise.all([
      redis.zscore(`${testKeys(prefix).of(deviceId)}presence:expiry`, deviceId),
      redis.hget(deviceKey(prefix, 'device', deviceId), 'expiresAt'),
    ]);
    expect(index).toBe(record);
    return Number(index);
  };

  beforeAll(async () => {
    gw = await startTestApp({
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: prefix,
      HEARTBEAT_INTERVAL_MS: String(INTERVAL),
      HEARTBEAT_MIN_MS: '200',
      HEARTBEAT_MAX_MS: '2000',
      SWEEP_INTERVAL_MS: String(SWEEP),
      SOCKET_EVENTS_PER_SECOND: '20',
    }, clock);
  });
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.disconnect());
  });
  afterAll(async () => {
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  describe('handshake', () => {
    it.each([['websocket'], ['polling']])('records presence, then sends ready (%s transport)', async (transport) => {
      const { socket, ready } = await connected({ deviceId: `hs-${transport}`, platform: 'android' }, [transport]);
      expect(ready).toEqual({
        sessionId: expect.any(String),
        deviceId: `hs-${transport}`,
        userId: 'user-1',
        heartbeat: { interval: INTERVAL, min: 200, max: 2000, ttl: TTL },
        serverTime: expect.any(Number),
        tokenExpiresAt: expect.any(Number),
      });
      expect(ready.serverTime).toBe(clock.now());
      expect(Math.abs(ready.tokenExpiresAt - (Date.now() + 3_600_000))).toBeLessThan(5_000); // the token's exp ('1h', signed on real time)
      expect(await presenceOf(`hs-${transport}`)).toBe(ready.sessionId);
      expect(await expiryOf(`hs-${transport}`)).toBe(clock.now() + TTL);
      const pttl = await redis.pttl(deviceKey(prefix, 'presence', `hs-${transport}`));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(TTL);
      expect(socket.connected).toBe(true);
    });

    it('widens the first TTL by 8 round trips the client announces in auth.rtt (at most 12 s), and ignores an unusable one', async () => {
      const firstTtl = async (deviceId: string, rtt: unknown) => {
        const socket = connectDevice(gw.url, deviceToken({ sub: 'user-1', deviceId }), { auth: { rtt } });
        sockets.push(socket);
        const ready = await nextEvent<Ready>(socket, 'ready');
        expect(await expiryOf(deviceId)).toBe(clock.now() + ready.heartbeat.ttl);
        const pttl = await redis.pttl(deviceKey(prefix, 'presence', deviceId));
        expect(pttl).toBeGreaterThan(ready.heartbeat.ttl - 1_000);
        expect(pttl).toBeLessThanOrEqual(ready.heartbeat.ttl);
        return ready.heartbeat.ttl;
      };
      expect(await firstTtl('rtt-600', 600)).toBe(TTL + 4_800);
      expect(await firstTtl('rtt-0.4', 0.4)).toBe(TTL + 4); // rounded up, like a heartbeat's
      expect(await firstTtl('rtt-huge', 600_000)).toBe(TTL + 12_000);
      for (const unusable of [-1, 600_001, '600', null, Number.NaN]) expect(await firstTtl(`rtt-bad-${String(unusable)}`, unusable)).toBe(TTL);
    });

    it('upgrades from long-polling to WebSocket', async () => {
      const { socket } = await connected({ deviceId: 'upgrader' }, ['polling', 'websocket']);
      await waitFor(() => socket.io.engine.transport.name === 'websocket');
    });

    it.each([
      ['missing_token', undefined],
      ['invalid_token', 'garbage'],
      ['invalid_token', deviceToken({ sub: 'u' })],
      ['invalid_token', deviceToken({ sub: 'u', deviceId: 'd' }, { expiresIn: 60 }, 'another-secret-another-secret-another')],
      ['token_expired', deviceToken({ sub: 'u', deviceId: 'd' }, { expiresIn: -10 })],
    ])('refuses with connect_error unauthorized / %s', async (code, token) => {
      const socket = connectDevice(gw.url, token);
      sockets.push(socket);
      const err = await nextEvent<Error & { data: { code: string } }>(socket, 'connect_error');
      expect(err.message).toBe('unauthorized');
      expect(err.data.code).toBe(code);
    });
  });

  describe('heartbeats', () => {
    it('closes a socket whose session another took over without telling it (a lost takeover notice) as replaced, at its next heartbeat', async () => {
      const { socket, ready } = await connected({ sub: 'u-ghost', deviceId: 'ghost-1' });
      // A new session of the device recorded in the store, as another instance's connect does, but
      // its notice to this instance (a pub/sub message) lost.
      const store = gw.app.get(PresenceStore);
      await store.connect({ deviceId: 'ghost-1', sessionId: 'elsewhere', userId: 'u-ghost', platform: 'ios', instanceId: 'gw-elsewhere', now: clock.now(), interval: 2_000, ttl: 5_000 });
      const replaced = nextEvent<{ sessionId: string }>(socket, 'session_replaced');
      const gone = nextEvent<string>(socket, 'disconnect');
      // The socket is closed right after session_replaced, as at a takeover: the ack may not arrive.
      void emitAck(socket, 'heartbeat', {}).catch(() => undefined);
      expect(await replaced).toEqual({ sessionId: (ready as { sessionId: string }).sessionId, reason: 'new_session' });
      expect(await gone).toBe('io server disconnect');
      expect(await presenceOf('ghost-1')).toBe('elsewhere');
    });

    it('answers a heartbeat sent before `ready` once the session has started, after `ready`', async () => {
      const socket = open({ deviceId: 'hb-early' });
      const seen: string[] = [];
      socket.on('ready', () => seen.push('ready'));
      // Emitted at once: the client sends it as soon as it is connected, while the server is still
      // recording the session.
      const ack = emitAck(socket, 'heartbeat', { interval: 1_000 }).then((a) => (seen.push('ack'), a));
      expect(await ack).toMatchObject({ ok: true, interval: 1_000 });
      expect(seen).toEqual(['ready', 'ack']);
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true, interval: 1_000 });
    });

    it('acks with the clamped interval and sets the presence TTL from the time of the beat', async () => {
      const { socket } = await connected({ deviceId: 'hb-1' });
      clock.advance(300);
      const ack = await emitAck(socket, 'heartbeat', { interval: 1_000 });
      expect(ack).toEqual({ ok: true, interval: 1_000, ttl: 2_500, serverTime: clock.now() });
      // Shorter than the TTL it had from the handshake: set from this beat, not extended.
      expect(await expiryOf('hb-1')).toBe(clock.now() + 2_500);
      const pttl = await redis.pttl(deviceKey(prefix, 'presence', 'hb-1'));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(2_500);
      expect(await emitAck(socket, 'heartbeat', { interval: 5 })).toMatchObject({ ok: true, interval: 200, ttl: 500 });
      expect(await emitAck(socket, 'heartbeat', { interval: 1e9 })).toMatchObject({ ok: true, interval: 2_000, ttl: 5_000 });
      expect(await emitAck(socket, 'heartbeat')).toMatchObject({ ok: true, interval: 2_000 }); // keeps its interval
    });

    it('keeps a device online across several TTLs when each beat comes 1 ms before it would expire', async () => {
      const { socket, ready } = await connected({ deviceId: 'hb-steady' });
      for (let i = 0; i < 4; i++) {
        clock.advance(TTL - 1); // a sweep at this instant must not retire it either
        expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true, serverTime: clock.now() });
      }
      await sweepsRan(gw.url);
      expect(await presenceOf('hb-steady')).toBe(ready.sessionId);
      expect(await redis.hget(deviceKey(prefix, 'device', 'hb-steady'), 'sessionId')).toBe(ready.sessionId);
      expect(await expiryOf('hb-steady')).toBe(clock.now() + TTL);
    });

    it('refuses a heartbeat whose interval is not a number, without refreshing presence', async () => {
      const { socket } = await connected({ deviceId: 'hb-bad' });
      const before = await expiryOf('hb-bad');
      clock.advance(300); // a refresh now would move the expiry by 300 ms
      for (const bad of [{ interval: 'fast' }, { interval: -1 }, { interval: null }, 'x', [1]]) {
        const ack = await emitAck(socket, 'heartbeat', bad);
        expect(ack).toEqual({ ok: false, error: { code: 'invalid_payload', message: expect.any(String) } });
      }
      expect(await expiryOf('hb-bad')).toBe(before);
    });
  });

  describe('smart heartbeat support', () => {
    // Learning from stable runs takes the gateway's clock: test/network-learning.e2e-spec.ts.
    it('records app state, network and interval', async () => {
      const network = `wifi:lab-${Date.now()}`;
      const { socket } = await connected({ deviceId: 'teacher' });
      for (let i = 0; i < 3; i++) {
        expect(await emitAck(socket, 'heartbeat', { interval: 1_500, network, appState: 'background' })).toMatchObject({ ok: true });
      }
      const shown = await fetch(`${gw.url}/v1/devices/teacher`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
      expect(await shown.json()).toMatchObject({ appState: 'background', network, interval: 1_500 });
      expect(await emitAck(socket, 'heartbeat', { appState: 'sideways' })).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    });
  });

  describe('sweeper', () => {
    it('retires a silent device whose transport is still up at its TTL, not 1 ms earlier, and closes it', async () => {
      const { socket, ready } = await connected({ deviceId: 'silent' });
      clock.advance(TTL - 1);
      await sweepsRan(gw.url);
      expect(await redis.hget(deviceKey(prefix, 'device', 'silent'), 'sessionId')).toBe(ready.sessionId);
      // Within a few sweeps; 10 s because a Cluster run under CI's load once took longer than 2.
      const closed = nextEvent<string>(socket, 'disconnect', 10_000);
      clock.advance(1);
      expect(await closed).toBe('transport close'); // a client that comes back reconnects by itself
      expect(await presenceOf('silent')).toBeNull();
      expect(await redis.zscore(`${testKeys(prefix).of('silent')}presence:expiry`, 'silent')).toBeNull();
    });

    it('takes a cleanly disconnected device offline at once', async () => {
      const { socket } = await connected({ deviceId: 'leaver' });
      socket.disconnect();
      await waitFor(async () => (await presenceOf('leaver')) === null, 1_000);
      expect(await redis.hget(deviceKey(prefix, 'device', 'leaver'), 'sessionId')).toBeNull();
    });
  });

  describe('one session per device', () => {
    it('replaces the old socket, which gets session_replaced; its disconnect never removes the new presence', async () => {
      const first = await connected({ deviceId: 'twin' });
      const replaced = nextEvent<{ sessionId: string }>(first.socket, 'session_replaced');
      const gone = nextEvent<string>(first.socket, 'disconnect');
      const second = await connected({ deviceId: 'twin' });
      expect(await replaced).toEqual({ sessionId: first.ready.sessionId, reason: 'new_session' });
      expect(await gone).toBe('io server disconnect');
      // The old socket's disconnect handler lowers this gauge right before it asks the store to
      // end the old session, so once only the new socket counts, that request is on the app's
      // Redis connection, and the heartbeat below runs after it.
      await waitFor(async () => (await metric(gw.url, 'push_gateway_connected_devices')) === 1);
      expect(await emitAck(second.socket, 'heartbeat', {})).toMatchObject({ ok: true });
      expect(await presenceOf('twin')).toBe(second.ready.sessionId);
      expect(await redis.hget(deviceKey(prefix, 'device', 'twin'), 'sessionId')).toBe(second.ready.sessionId);
    });

    it('keeps exactly one session when the same device connects many times at once', async () => {
      const racers = Array.from({ length: 5 }, () => open({ deviceId: 'racer' }));
      const readies = new Map<Socket, Ready>();
      const closed = new Set<Socket>();
      for (const s of racers) {
        s.on('ready', (r: Ready) => readies.set(s, r));
        s.on('disconnect', () => closed.add(s));
      }
      // Every racer but the last to record its session is replaced, and the server closes it.
      await waitFor(() => closed.size === racers.length - 1);
      const winner = racers.find((s) => !closed.has(s))!;
      await waitFor(() => readies.has(winner));
      expect(await emitAck(winner, 'heartbeat', {})).toMatchObject({ ok: true });
      expect(await presenceOf('racer')).toBe(readies.get(winner)!.sessionId);
      expect(closed.size).toBe(racers.length - 1);
    });
  });

  describe('bad events', () => {
    it('answers unknown events, malformed and oversized payloads with error acks and stays up', async () => {
      const { socket } = await connected({ deviceId: 'rowdy' });
      const bystander = await connected({ deviceId: 'bystander' });
      expect(await emitAck(socket, 'launch_missiles', {})).toMatchObject({ ok: false, error: { code: 'unknown_event' } });
      expect(await emitAck(socket, 'subscribe', 'nope')).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
      expect(await emitAck(socket, 'heartbeat', { interval: 'x'.repeat(10_000) })).toMatchObject({
        ok: false,
        error: { code: 'payload_too_large' },
      });
      socket.emit('heartbeat', { interval: {} }); // no ack asked: silently refused
      socket.emit('unknown-without-ack');
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true });
      expect(await emitAck(bystander.socket, 'heartbeat', {})).toMatchObject({ ok: true });
    });

    it('rate limits a flooding socket without touching its neighbours', async () => {
      const { socket } = await connected({ deviceId: 'flooder' });
      const bystander = await connected({ deviceId: 'calm' });
      const replies = await Promise.all(Array.from({ length: 60 }, () => emitAck(socket, 'heartbeat', {})));
      expect(replies.filter((r) => r.error?.code === 'rate_limited').length).toBeGreaterThan(0);
      expect(await emitAck(bystander.socket, 'heartbeat', {})).toMatchObject({ ok: true });
    });

    it('closes only the connection that sends a frame beyond the transport limit', async () => {
      const { socket } = await connected({ deviceId: 'huge' });
      const bystander = await connected({ deviceId: 'small' });
      const gone = nextEvent<string>(socket, 'disconnect');
      socket.emit('heartbeat', { pad: 'x'.repeat(200_000) });
      expect(await gone).toBe('transport close');
      expect(await emitAck(bystander.socket, 'heartbeat', {})).toMatchObject({ ok: true });
    });
  });

  describe('event listeners', () => {
    it('binds each client event, and the disconnect, with listeners that every socket shares (no functions per socket)', async () => {
      await connected({ deviceId: 'bound-a' });
      await connected({ deviceId: 'bound-b' });
      const channel = gw.app.get(DeviceChannel);
      const a = channel.localSocket('bound-a')!;
      const b = channel.localSocket('bound-b')!;
      for (const event of CLIENT_EVENTS) {
        expect(a.listeners(event)).toHaveLength(1);
        expect(a.listeners(event)[0]).toBe(b.listeners(event)[0]);
      }
      // The gateway's and the delivery's (the outbox).
      expect(a.listeners('disconnect')).toHaveLength(2);
      a.listeners('disconnect').forEach((listener, i) => expect(listener).toBe(b.listeners('disconnect')[i]));
    });

    it('answers an event whose handler fails with an unavailable error ack, and the socket goes on', async () => {
      const { socket } = await connected({ deviceId: 'unlucky' });
      const failing = jest.spyOn(gw.app.get(SessionService), 'heartbeat').mockRejectedValueOnce(new Error('a bug'));
      try {
        expect(await emitAck(socket, 'heartbeat', {})).toEqual({
          ok: false,
          error: { code: 'unavailable', message: 'the gateway could not handle heartbeat; retry' },
        });
      } finally {
        failing.mockRestore();
      }
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true });
    });
  });

  describe('topics', () => {
    it('subscribes to topics the token allows and refuses the others', async () => {
      const { socket } = await connected({ deviceId: 'reader', topics: ['news', 'sport.*'] });
      expect(await emitAck(socket, 'subscribe', { topics: ['news', 'sport.tennis'] })).toEqual({
        ok: true,
        topics: ['news', 'sport.tennis'],
      });
      const refused = await emitAck(socket, 'subscribe', { topics: ['news', 'secret', 'sport'] });
      expect(refused).toMatchObject({ ok: false, error: { code: 'forbidden_topic', topics: ['secret', 'sport'] } });
      expect(refused.error?.message).toContain('secret, sport');
      expect(await emitAck(socket, 'unsubscribe', { topics: ['news'] })).toEqual({ ok: true, topics: ['sport.tennis'] });
    });
  });
});
