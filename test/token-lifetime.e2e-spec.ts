import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import { SessionSweeper } from '../src/gateway/session-sweeper.service';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TokenClaims } from './support/tokens';

type Json = Record<string, any>;
type AckReply = { ok: boolean; error?: { code: string; message: string }; [k: string]: unknown };

const GRACE = 30_000; // TOKEN_EXPIRY_GRACE_MS's default
/**
 * How far past a deadline the tests that check "too late" go: a process that is behind (its
 * measured event-loop delay, LoadMonitor) gives sessions that much longer, so on a loaded machine
 * the deadline itself may still count as in time.
 */
const PAST = 5_000;

/**
 * Token lifetime on the real app with real sockets and Redis, on a fake clock so that token
 * lifetimes and the grace pass in an instant. A session lives on its token: it can be moved onto
 * a fresh one with `auth`, and otherwise ends (`token_expired`) TOKEN_EXPIRY_GRACE_MS after the
 * token ran out, receiving nothing from that moment on.
 */
describe('token lifetime (fake clock, real sockets, real Redis)', () => {
  const redis = new Redis(testRedisUrl());
  const prefixes: string[] = [];
  const apps: TestApp[] = [];
  const sockets: Socket[] = [];

  /** An app on its own fake clock; `sweepMs` long keeps the sweeper out of the way. */
  async function gateway(env: Record<string, string>, sweepMs = 50) {
    const clock = new FakeClock(Date.now());
    const prefix = uniquePrefix('token');
    prefixes.push(prefix);
    const gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, SWEEP_INTERVAL_MS: String(sweepMs), ...env }, clock);
    apps.push(gw);
    const seconds = () => Math.floor(clock.now() / 1000);
    /** A token minted now on the gateway's clock that expires in `lifetimeS` seconds. */
    const token = (deviceId: string, lifetimeS: number, claims: TokenClaims = {}) =>
      deviceToken({ sub: 'tl-user', deviceId, iat: seconds(), exp: seconds() + lifetimeS, ...claims }, {});
    /** A connected device that records (and acks) every notification it gets. */
    const device = async (deviceId: string, lifetimeS: number, claims: TokenClaims = {}) => {
      const expiresAt = (seconds() + lifetimeS) * 1000; // the token's exp, in ms
      const socket = connectDevice(gw.url, token(deviceId, lifetimeS, claims));
      sockets.push(socket);
      const received: string[] = [];
      socket.on('notification', (n: { id: string }, ack: () => void) => {
        received.push(n.id);
        ack();
      });
      const ready = await nextEvent<Json>(socket, 'ready');
      return { socket, ready, received, expiresAt };
    };
    const push = async (deviceId: string) => {
      const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: [deviceId], data: { at: clock.now() }, ttl: 600 } });
      expect(res.status).toBe(202);
      return ((await res.json()) as Json).id as string;
    };
    const online = async (deviceId: string) => ((await (await api(gw.url, `/v1/devices/${deviceId}`)).json()) as Json).online as boolean;
    const statusOf = async (id: string) => ((await (await api(gw.url, `/v1/notifications/${id}`)).json()) as Json).targets[0].status as string;
    return { gw, clock, seconds, token, device, push, online, statusOf };
  }

  const emitAck = (socket: Socket, event: string, payload?: unknown) => socket.timeout(2_000).emitWithAck(event, payload) as Promise<AckReply>;

  afterEach(() => {
    sockets.splice(0).forEach((s) => s.disconnect());
  });
  afterAll(async () => {
    for (const gw of apps) await gw.close();
    for (const prefix of prefixes) await deleteKeys(redis, prefix);
    await redis.quit();
  });

  describe('with the sweeper ticking every 50 ms', () => {
    let g: Awaited<ReturnType<typeof gateway>>;
    beforeAll(async () => {
      g = await gateway({});
    });

    it('ends a session whose token ran out TOKEN_EXPIRY_GRACE_MS ago: session_ended, disconnected, offline, sent nothing more', async () => {
      const { socket, ready, received, expiresAt } = await g.device('row6', 3);
      const before = await g.push('row6');
      await waitFor(() => received.includes(before));

      g.clock.advance(expiresAt + 18_000 - g.clock.now()); // expired, but within the grace
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true });

      const ended = nextEvent<Json>(socket, 'session_ended');
      const gone = nextEvent<string>(socket, 'disconnect');
      g.clock.advance(expiresAt + GRACE - g.clock.now());
      const after = await g.push('row6');
      expect(await ended).toEqual({ reason: 'token_expired', reconnect: true });
      expect(await gone).toBe('transport close');
      await waitFor(async () => !(await g.online('row6')));
      expect(received).toEqual([before]); // nothing can arrive after the disconnect
      expect(await g.statusOf(after)).toBe('pending'); // kept for the device's next session
      expect(ready.tokenExpiresAt).toBe(expiresAt);
    });

    it('auth moves the session onto a fresh token, which keeps it alive past the first one’s expiry and grace', async () => {
      const { socket, ready, received, expiresAt } = await g.device('refresher', 3);
      expect(ready.tokenExpiresAt).toBe(expiresAt);
      g.clock.advance(2_000);
      const fresh = g.token('refresher', 3_600);
      const ack = await emitAck(socket, 'auth', { token: fresh });
      expect(ack).toEqual({ ok: true, tokenExpiresAt: (g.seconds() + 3_600) * 1000, topics: [] });

      g.clock.advance(expiresAt + GRACE + 1_000 - g.clock.now()); // within the presence TTL (62.5 s)
      await g.gw.app.get(SessionSweeper).sweep(); // a sweep that would have ended the old token's session has run
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true });
      const later = await g.push('refresher');
      await waitFor(() => received.includes(later));
      expect(await g.online('refresher')).toBe(true);
      expect(socket.connected).toBe(true);
    });

    it('accepts a refresh during the grace, after the token ran out', async () => {
      const { socket, expiresAt } = await g.device('late-refresher', 3);
      g.clock.advance(expiresAt + GRACE - 1 - g.clock.now());
      expect(await emitAck(socket, 'auth', { token: g.token('late-refresher', 600) })).toMatchObject({ ok: true });
      g.clock.advance(1_000);
      await g.gw.app.get(SessionSweeper).sweep();
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true });
    });

    it('refuses tokens of another identity, invalid and expired tokens, and malformed payloads, keeping the session as it was', async () => {
      const { socket, expiresAt } = await g.device('picky', 600);
      const refused = async (payload: unknown, code: string) =>
        expect(await emitAck(socket, 'auth', payload)).toEqual({ ok: false, error: { code, message: expect.any(String) } });
      await refused({ token: g.token('someone-else', 600) }, 'identity_mismatch');
      await refused({ token: g.token('picky', 600, { sub: 'another-user' }) }, 'identity_mismatch');
      await refused({ token: 'garbage' }, 'invalid_token');
      await refused({ token: deviceToken({ sub: 'tl-user', deviceId: 'picky' }, { expiresIn: 600 }, 'another-secret-another-secret-another') }, 'invalid_token');
      await refused({ token: g.token('picky', 600, { iat: g.seconds() + 3_600 }) }, 'invalid_token'); // minted in the future
      await refused({ token: g.token('picky', -1) }, 'token_expired');
      await refused({ token: '' }, 'invalid_payload');
      await refused({}, 'invalid_payload');
      await refused('x', 'invalid_payload');
      expect(await emitAck(socket, 'heartbeat', {})).toMatchObject({ ok: true });

      // Still on its first token: it ends at that token's deadline.
      const ended = nextEvent<Json>(socket, 'session_ended');
      g.clock.advance(expiresAt + GRACE - g.clock.now());
      expect(await ended).toEqual({ reason: 'token_expired', reconnect: true });
    });

    it('takes the refreshed token’s topics as the grant: topics it no longer allows are left', async () => {
      const { socket } = await g.device('narrowed', 600, { topics: ['news', 'sport.*'] });
      expect(await emitAck(socket, 'subscribe', { topics: ['news', 'sport.tennis'] })).toEqual({ ok: true, topics: ['news', 'sport.tennis'] });
      const ack = await emitAck(socket, 'auth', { token: g.token('narrowed', 600, { topics: ['sport.*', 'weather'] }) });
      expect(ack).toMatchObject({ ok: true, topics: ['sport.tennis'] });
      expect(await emitAck(socket, 'subscribe', { topics: ['news'] })).toMatchObject({ ok: false, error: { code: 'forbidden_topic' } });
      expect(await emitAck(socket, 'subscribe', { topics: ['weather'] })).toEqual({ ok: true, topics: ['sport.tennis', 'weather'] });
    });

    it('counts auth against the event budget, and takes a token larger than MAX_PAYLOAD_BYTES', async () => {
      const topics = Array.from({ length: 100 }, (_, i) => `${'t'.repeat(100)}${i}.*`);
      const { socket } = await g.device('big-token', 600, { topics });
      const big = g.token('big-token', 1_200, { topics });
      expect(big.length).toBeGreaterThan(3 * 4_096);
      expect(await emitAck(socket, 'auth', { token: big })).toMatchObject({ ok: true });
      // The fake clock stands still, so the bucket does not refill: a burst of 20, then refusals.
      const replies = await Promise.all(Array.from({ length: 30 }, () => emitAck(socket, 'auth', { token: 'garbage' })));
      expect(replies.filter((r) => r.error?.code === 'rate_limited')).toHaveLength(30 - 20 + 1); // the big one used one
    });

    it(`accepts iat and nbf up to 30 s ahead of the gateway's clock, and refuses tokens minted further ahead`, async () => {
      const ahead = await g.device('ahead', 600, { iat: g.seconds() + 20, nbf: g.seconds() + 20 });
      expect(ahead.ready.tokenExpiresAt).toBe((g.seconds() + 600) * 1000);
      const refused = connectDevice(g.gw.url, g.token('too-far-ahead', 600, { iat: g.seconds() + 40 }));
      sockets.push(refused);
      const err = await nextEvent<Error & { data: { code: string } }>(refused, 'connect_error');
      expect(err.data.code).toBe('invalid_token');
    });
  });

  describe('between sweeps', () => {
    let g: Awaited<ReturnType<typeof gateway>>;
    beforeAll(async () => {
      g = await gateway({}, 3_600_000); // the sweeper never runs during these tests
    });

    it('sends nothing after the deadline, and a heartbeat then ends the session instead of refreshing presence', async () => {
      const { socket, received, expiresAt } = await g.device('quiet', 3);
      const before = await g.push('quiet');
      await waitFor(() => received.includes(before));
      g.clock.advance(expiresAt + GRACE + PAST - g.clock.now());
      // A 202 means "being sent now" to a live socket: had this one been sent, it would arrive
      // before anything the heartbeat below causes.
      const after = await g.push('quiet');
      const ended = nextEvent<Json>(socket, 'session_ended');
      const gone = nextEvent<string>(socket, 'disconnect');
      expect(await emitAck(socket, 'heartbeat', {})).toEqual({ ok: false, error: { code: 'token_expired', message: expect.any(String) } });
      expect(await ended).toEqual({ reason: 'token_expired', reconnect: true });
      expect(await gone).toBe('transport close');
      expect(received).toEqual([before]);
      expect(await g.statusOf(after)).toBe('pending');
      await waitFor(async () => !(await g.online('quiet')));
    });

    it('a refresh after the deadline comes too late: the session ends', async () => {
      const { socket, expiresAt } = await g.device('too-late', 3);
      g.clock.advance(expiresAt + GRACE + PAST - g.clock.now());
      const ended = nextEvent<Json>(socket, 'session_ended');
      expect(await emitAck(socket, 'auth', { token: g.token('too-late', 600) })).toMatchObject({ ok: false, error: { code: 'token_expired' } });
      expect(await ended).toEqual({ reason: 'token_expired', reconnect: true });
    });
  });

  describe('with DEVICE_TOKEN_MAX_AGE', () => {
    let g: Awaited<ReturnType<typeof gateway>>;
    beforeAll(async () => {
      g = await gateway({ DEVICE_TOKEN_MAX_AGE: '60' });
    });

    it('refuses tokens without iat or older than the max age, and ends sessions at iat + max age', async () => {
      const refusal = async (token: string) => {
        const socket = connectDevice(g.gw.url, token);
        sockets.push(socket);
        return (await nextEvent<Error & { data: { code: string } }>(socket, 'connect_error')).data.code;
      };
      expect(await refusal(deviceToken({ sub: 'tl-user', deviceId: 'no-iat', exp: g.seconds() + 600 }, {}))).toBe('invalid_token');
      expect(await refusal(g.token('old', 3_600, { iat: g.seconds() - 60 }))).toBe('token_expired');

      const agedOut = (g.seconds() + 60) * 1000;
      const { socket, ready } = await g.device('aging', 3_600); // exp an hour away, but the max age is a minute
      expect(ready.tokenExpiresAt).toBe(agedOut);
      g.clock.advance(30_000);
      const stale = g.token('aging', 3_600, { iat: g.seconds() - 61 });
      expect(await emitAck(socket, 'auth', { token: stale })).toMatchObject({ ok: false, error: { code: 'token_expired' } });
      const ended = nextEvent<Json>(socket, 'session_ended');
      g.clock.advance(agedOut + GRACE - g.clock.now());
      expect(await ended).toEqual({ reason: 'token_expired', reconnect: true });
    });
  });
});
