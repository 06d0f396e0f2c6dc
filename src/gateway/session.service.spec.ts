import { Logger } from '@nestjs/common';
import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { FakeDeviceChannel } from '../channel/fake-device-channel';
import { DeviceSession } from '../channel/socket-events';
import { loadConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { HeartbeatPolicy } from '../presence/heartbeat-policy';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { heartbeatIndexScore, knownLive } from '../presence/presence.types';
import { DEVICE_SAMPLE_PERIOD_MS, STABLE_BEATS } from '../presence/network-intervals';
import { SessionService } from './session.service';

const config = loadConfig({ HEARTBEAT_INTERVAL_MS: '20000', HEARTBEAT_MIN_MS: '5000', HEARTBEAT_MAX_MS: '60000', INSTANCE_ID: 'gw-a' });
const TTL = 53_000; // 2.5 x 20 s + the 3 s TCP slack
const TOKEN_EXPIRES_AT = 1_800_000_000_000;

describe('SessionService', () => {
  let clock: FakeClock;
  let store: MemoryPresenceStore;
  let channel: FakeDeviceChannel;
  let metrics: MetricsService;
  let sessions: SessionService;

  const session = (sessionId: string, extra: Partial<DeviceSession> = {}): DeviceSession => ({
    deviceId: 'd1',
    userId: 'u1',
    sessionId,
    topics: [],
    interval: config.heartbeat.interval,
    recorded: {},
    beatsAtInterval: 0,
    tokenExpiresAt: TOKEN_EXPIRES_AT,
    tokenDeadline: TOKEN_EXPIRES_AT + config.tokenExpiryGraceMs,
    ...extra,
  });
  const device = async (deviceId = 'd1') => (await store.getDevices([deviceId], clock.now()))[0];
  /** `n` beats, each after the interval the device announced last (as a real device waits). */
  const beats = async (s: DeviceSession, n: number, payload: object) => {
    for (let i = 0; i < n; i++) {
      clock.advance(s.interval);
      expect(await sessions.heartbeat(s, payload)).toMatchObject({ ok: true });
    }
  };

  beforeEach(() => {
    clock = new FakeClock();
    store = new MemoryPresenceStore(86_400_000);
    channel = new FakeDeviceChannel('gw-a');
    metrics = new MetricsService();
    sessions = new SessionService(store, new HeartbeatPolicy(config.heartbeat, config.heartbeatTtlSlackMs), clock, channel as unknown as DeviceChannel, config, metrics, new LoadMonitor(config, clock));
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => jest.restoreAllMocks());

  it('records presence with the configured interval and ttl, and builds ready', async () => {
    const s = session('s1', { platform: 'ios' });
    expect(await sessions.start(s)).toEqual({
      sessionId: 's1',
      deviceId: 'd1',
      userId: 'u1',
      heartbeat: { interval: 20_000, min: 5_000, max: 60_000, ttl: TTL },
      serverTime: clock.now(),
      tokenExpiresAt: TOKEN_EXPIRES_AT,
    });
    expect(await device()).toMatchObject({ online: true, sessionId: 's1', instanceId: 'gw-a', interval: 20_000, expiresAt: clock.now() + TTL });
    expect(channel.closed).toEqual([]);
  });

  it('closes the older session of the same device as replaced', async () => {
    await sessions.start(session('s1'));
    await sessions.start(session('s2'));
    expect(channel.closed).toEqual([{ sessions: [{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-a' }], reason: 'replaced' }]);
    expect((await metrics.sessionsReplaced.get()).values[0]?.value).toBe(1);
    expect(await device()).toMatchObject({ sessionId: 's2' });
    await sessions.start(session('s2')); // the same session recorded again replaces nothing
    expect(channel.closed).toHaveLength(1);
  });

  it.each([
    [1_000, 5_000],
    [30_000.4, 30_000],
    [1_000_000, 60_000],
  ])('clamps a requested interval of %d ms to %d ms and extends presence by its ttl', async (requested, interval) => {
    const s = session('s1');
    await sessions.start(s);
    clock.advance(10_000);
    const ttl = Math.ceil(interval * 2.5) + config.heartbeatTtlSlackMs;
    expect(await sessions.heartbeat(s, { interval: requested })).toEqual({ ok: true, interval, ttl, serverTime: clock.now() });
    expect(await device()).toMatchObject({ interval, expiresAt: clock.now() + ttl });
    clock.advance(ttl - 1);
    expect(await device()).toMatchObject({ online: true });
    clock.advance(1);
    expect(await device()).toMatchObject({ online: false });
  });

  it('keeps the session interval when a heartbeat asks for none', async () => {
    const s = session('s1');
    await sessions.start(s);
    await sessions.heartbeat(s, { interval: 8_000 });
    expect(await sessions.heartbeat(s, undefined)).toMatchObject({ ok: true, interval: 8_000, ttl: 23_000 });
  });

  it('keeps more presence for a device on a slow link (the round trip it reports), and refuses a negative one', async () => {
    const s = session('s1');
    await sessions.start(s);
    const slack = config.heartbeatTtlSlackMs;
    expect(await sessions.heartbeat(s, { interval: 8_000, rtt: 600 })).toMatchObject({ ok: true, ttl: 20_000 + slack + 4_800 });
    expect(await device()).toMatchObject({ expiresAt: clock.now() + 20_000 + slack + 4_800 });
    expect(await sessions.heartbeat(s, { interval: 8_000 })).toMatchObject({ ok: true, ttl: 20_000 + slack });
    expect(await sessions.heartbeat(s, { interval: 8_000, rtt: -1 })).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
  });

  it('answers invalid_payload and leaves presence alone', async () => {
    const s = session('s1');
    await sessions.start(s);
    const expiresAt = (await device())?.expiresAt;
    clock.advance(10_000);
    expect(await sessions.heartbeat(s, { interval: 'soon' })).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    expect(await device()).toMatchObject({ expiresAt, lastHeartbeatAt: clock.now() - 10_000 });
  });

  it('answers session_expired once presence ran out, and closes that session as expired', async () => {
    const s = session('s1');
    await sessions.start(s);
    clock.advance(TTL);
    expect(await sessions.heartbeat(s, {})).toMatchObject({ ok: false, error: { code: 'session_expired' } });
    expect(channel.closed).toEqual([{ sessions: [{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-a' }], reason: 'expired' }]);
  });

  it('answers unavailable when the store fails, without closing the session', async () => {
    const s = session('s1');
    await sessions.start(s);
    jest.spyOn(store, 'heartbeat').mockRejectedValue(new Error('connection lost'));
    expect(await sessions.heartbeat(s, { interval: 8_000 })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(channel.closed).toEqual([]);
    expect(s.interval).toBe(20_000);
  });

  it("tells the store what the session's record holds, so a heartbeat writes only what changed; after a failed write, nothing", async () => {
    const s = session('s1', { network: 'wifi:a' });
    await sessions.start(s);
    const seen = jest.spyOn(store, 'heartbeat');
    const recorded = () => {
      const u = seen.mock.calls.at(-1)![0];
      return { interval: u.recordedInterval, appState: u.recordedAppState, network: u.recordedNetwork };
    };
    // What the start wrote: the interval and the handshake's network, no app state.
    await sessions.heartbeat(s, { appState: 'background' });
    expect(recorded()).toEqual({ interval: 20_000, appState: undefined, network: 'wifi:a' });
    // Two heartbeats in flight: the second counts on the first (Redis applies them in order).
    const both = [sessions.heartbeat(s, { interval: 8_000, network: 'cell:b' }), sessions.heartbeat(s, { interval: 8_000, network: 'cell:b' })];
    expect(seen.mock.calls.at(-2)![0]).toMatchObject({ recordedInterval: 20_000, recordedAppState: 'background', recordedNetwork: 'wifi:a' });
    expect(recorded()).toEqual({ interval: 8_000, appState: 'background', network: 'cell:b' });
    await Promise.all(both);
    // A write whose outcome is unknown: the next heartbeat knows nothing, so it writes every field it has.
    seen.mockRejectedValueOnce(new Error('connection lost'));
    expect(await sessions.heartbeat(s, { appState: 'foreground' })).toMatchObject({ ok: false });
    await sessions.heartbeat(s, {});
    expect(recorded()).toEqual({ interval: undefined, appState: undefined, network: undefined });
    await sessions.heartbeat(s, {});
    expect(recorded()).toEqual({ interval: 8_000, appState: undefined, network: 'cell:b' });
  });

  it("tells the store the record's expiresAt and index score as its start and the heartbeats sent since wrote them; after a failed write, nothing", async () => {
    const s = session('s1');
    const started = clock.now();
    const { heartbeat } = await sessions.start(s);
    const seen = jest.spyOn(store, 'heartbeat');
    const sent = () => seen.mock.calls.map(([u]) => u);
    for (let i = 0; i < 6; i++) {
      clock.advance(heartbeat.interval / 2);
      expect(await sessions.heartbeat(s, {})).toMatchObject({ ok: true });
    }
    // The first knows what the start wrote; each next one what the one before it wrote: its expiry,
    // and the index score it moved the entry to, or the one it left.
    expect(sent()[0]).toMatchObject({ recordedExpiresAt: started + heartbeat.ttl, recordedIndexAt: started + heartbeat.ttl });
    const scores = sent().map((u) => heartbeatIndexScore(u));
    for (let i = 1; i < sent().length; i++) {
      const before = sent()[i - 1]!;
      expect(sent()[i]).toMatchObject({ recordedExpiresAt: before.now + before.ttl, recordedIndexAt: scores[i - 1] ?? before.recordedIndexAt });
    }
    // Some beats moved the entry and some left it.
    expect(scores.some((x) => x === undefined) && scores.some((x) => x !== undefined)).toBe(true);
    // A write whose outcome is unknown: the next heartbeat knows neither, so the store checks the record.
    seen.mockRejectedValueOnce(new Error('connection lost'));
    expect(await sessions.heartbeat(s, {})).toMatchObject({ ok: false });
    await sessions.heartbeat(s, {});
    expect(sent().at(-1)).toMatchObject({ recordedExpiresAt: undefined, recordedIndexAt: undefined });
    expect(knownLive(sent().at(-1)!)).toBe(false);
    await sessions.heartbeat(s, {});
    const last = sent().at(-2)!;
    expect(sent().at(-1)).toMatchObject({ recordedExpiresAt: last.now + last.ttl, recordedIndexAt: last.now + last.ttl });
  });

  it('samples a network once per run of stable beats and recommends what it learned to the next device', async () => {
    const network = 'wifi:lab';
    const s = session('s1', { network });
    await sessions.start(s);
    await beats(s, STABLE_BEATS - 1, { interval: 12_000, network });
    expect(await store.networkHistogram(network, clock.now())).toEqual({});
    await beats(s, STABLE_BEATS * 2, { interval: 12_000, network });
    expect(await store.networkHistogram(network, clock.now())).toEqual({ 12000: 1 });
    await beats(s, 1, { interval: 30_000, network });
    await beats(s, STABLE_BEATS, { interval: 12_000, network });
    expect(await store.networkHistogram(network, clock.now())).toEqual({ 12000: 1 }); // one per device and hour
    clock.advance(DEVICE_SAMPLE_PERIOD_MS);
    const later = session('s1b', { network });
    await sessions.start(later);
    await beats(later, STABLE_BEATS, { interval: 12_000, network });
    expect(await store.networkHistogram(network, clock.now())).toEqual({ 12000: 2 });
    // Beats that claim 12 s but come back to back are not a sample, whatever the device says.
    const hasty = session('s4', { deviceId: 'd4', network });
    await sessions.start(hasty);
    for (let i = 0; i < STABLE_BEATS; i++) await sessions.heartbeat(hasty, { interval: 12_000, network });
    expect(await store.networkHistogram(network, clock.now())).toEqual({ 12000: 2 });

    const next = await sessions.start(session('s2', { deviceId: 'd2', network }));
    expect(next.heartbeat).toMatchObject({ interval: 20_000, recommended: 12_000 });
    const elsewhere = await sessions.start(session('s3', { deviceId: 'd3', network: 'cell:other' }));
    expect(elsewhere.heartbeat.recommended).toBeUndefined();
  });

  it('learns nothing from a run with other traffic in its gaps (a ping or a notification kept the NAT mapping alive)', async () => {
    const network = 'wifi:busy';
    const s = session('s1', { network });
    await sessions.start(s);
    await beats(s, STABLE_BEATS - 1, { interval: 12_000, network });
    sessions.otherTraffic(s); // e.g. a notification went out between the second and the third beat
    await beats(s, 1, { interval: 12_000, network });
    expect(await store.networkHistogram(network, clock.now())).toEqual({});
    await beats(s, STABLE_BEATS - 1, { interval: 12_000, network }); // a clean run from the beat after it
    expect(await store.networkHistogram(network, clock.now())).toEqual({ 12000: 1 });
  });

  it('samples the network announced at the handshake when heartbeats do not repeat it', async () => {
    const s = session('s1', { network: 'wifi:lab' });
    await sessions.start(s);
    await beats(s, STABLE_BEATS, { interval: 12_000 });
    expect(await store.networkHistogram('wifi:lab', clock.now())).toEqual({ 12000: 1 });
  });

  it('makes the device offline on end, unless a newer session took over', async () => {
    const first = session('s1');
    const second = session('s2');
    await sessions.start(first);
    await sessions.start(second);
    await sessions.end(first);
    expect(await device()).toMatchObject({ online: true, sessionId: 's2' });
    clock.advance(1_000);
    await sessions.end(second);
    expect(await device()).toMatchObject({ online: false, lastSeenAt: clock.now() });
  });

  describe('a session end whose write fails (Redis down or stalled)', () => {
    const failing = (times: number) => {
      const real = store.disconnect.bind(store);
      let left = times;
      return jest.spyOn(store, 'disconnect').mockImplementation((...args) => (left-- > 0 ? Promise.reject(new Error('store unavailable')) : real(...args)));
    };
    afterEach(() => sessions.onApplicationShutdown());

    it('is retried with its own time and reason, and the device goes offline then, not at its TTL', async () => {
      const s = session('s1', { closing: 'kicked' });
      await sessions.start(s);
      clock.advance(2_000);
      const endedAt = clock.now();
      const spy = failing(2);
      await expect(sessions.end(s)).rejects.toThrow('store unavailable');
      expect(sessions.unendedCount).toBe(1);
      clock.advance(1_000);
      await sessions.retryEnds(); // fails again: still held
      expect(sessions.unendedCount).toBe(1);
      expect(await device()).toMatchObject({ online: true });
      clock.advance(2_000);
      await sessions.retryEnds();
      expect(sessions.unendedCount).toBe(0);
      expect(spy).toHaveBeenCalledTimes(3);
      expect(spy).toHaveBeenLastCalledWith([{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-a' }], endedAt, 'kicked');
      expect(await device()).toMatchObject({ online: false, lastSeenAt: endedAt });
    });

    it('changes nothing when the device has reconnected meanwhile (the retry names the old session)', async () => {
      const first = session('s1');
      await sessions.start(first);
      failing(1);
      await expect(sessions.end(first)).rejects.toThrow();
      await sessions.start(session('s2'));
      await sessions.retryEnds();
      expect(sessions.unendedCount).toBe(0);
      expect(await device()).toMatchObject({ online: true, sessionId: 's2' });
    });

    it('is given up once the presence it would end has run out (the sweep ends it)', async () => {
      const s = session('s1');
      await sessions.start(s);
      const spy = failing(1);
      await expect(sessions.end(s)).rejects.toThrow();
      clock.advance(TTL);
      await sessions.retryEnds();
      expect(spy).toHaveBeenCalledTimes(1);
      expect(sessions.unendedCount).toBe(0);
    });

    it('retries by itself on a timer', async () => {
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      try {
        const s = session('s1');
        await sessions.start(s);
        failing(1);
        await expect(sessions.end(s)).rejects.toThrow();
        expect(await device()).toMatchObject({ online: true });
        await jest.advanceTimersByTimeAsync(1_000);
        expect(sessions.unendedCount).toBe(0);
        expect(await device()).toMatchObject({ online: false });
      } finally {
        jest.useRealTimers();
      }
    });
  });
});
