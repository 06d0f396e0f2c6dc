import { PushClient, refreshDelay } from './push-client';

/** Something that takes listeners and can be made to fire them (a socket, its manager, its engine). */
class FakeEmitter {
  handlers = new Map<string, ((...args: any[]) => void)[]>();
  on(event: string, fn: (...args: any[]) => void) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
    return this;
  }
  fire(event: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(event) ?? []) fn(...args);
  }
  removeAllListeners() {
    this.handlers.clear();
  }
}

/** What happened, in order, across all sockets: `<socket index>:<what>`. */
const log: string[] = [];

/** A scripted stand-in for a socket.io-client socket: the test plays the server. */
class FakeSocket extends FakeEmitter {
  readonly index = sockets.length;
  connected = false;
  /** The options the client opened it with. */
  opts: { auth?: (cb: (data: Record<string, unknown>) => void) => void } = {};
  /** The Manager (`socket.io`) and its Engine.IO socket, where packets are seen. */
  io = Object.assign(new FakeEmitter(), { engine: new FakeEmitter() });
  sent: { event: string; payload: any; timeoutMs: number; ack: (err: Error | null, reply?: unknown) => void }[] = [];
  private pendingTimeout = 0;
  /** Replies the scripted server gives at once, by event (heartbeats that must not fail meanwhile); `undefined`: no reply. */
  autoReply = new Map<string, () => unknown>();
  timeout(ms: number) {
    this.pendingTimeout = ms;
    return this;
  }
  emit(event: string, payload: unknown, ack: (err: Error | null, reply?: unknown) => void) {
    this.packet('packetCreate');
    const entry = { event, payload, timeoutMs: this.pendingTimeout, ack };
    const reply = this.autoReply.get(event)?.();
    if (reply !== undefined) return (this.packet('packet'), ack(null, reply));
    this.sent.push(entry);
    const timer = setTimeout(() => ack(new Error('operation has timed out')), this.pendingTimeout);
    entry.ack = (err, reply) => (clearTimeout(timer), this.packet('packet'), ack(err, reply));
  }
  emitWithAck(event: string, payload: unknown) {
    return new Promise((resolve, reject) => this.emit(event, payload, (err, reply) => (err ? reject(err) : resolve(reply))));
  }
  /** An Engine.IO packet crossing the link: `packet` received, `packetCreate` sent. */
  packet(direction: 'packet' | 'packetCreate', type = 'message') {
    this.io.engine.fire(direction, { type });
  }
  /** The server's Engine.IO ping and the client's pong. */
  ping() {
    this.packet('packet', 'ping');
    this.packet('packetCreate', 'pong');
  }
  disconnect() {
    log.push(`${this.index}:disconnect`);
    this.connected = false;
    this.fire('disconnect', 'io client disconnect');
  }
  close() {}
  /** The server side of a session start; the server's clock may differ from ours by `skewMs`. */
  ready(interval: number, token: { lifetimeMs?: number; skewMs?: number } = {}, heartbeat: { min?: number; max?: number; recommended?: number } = {}) {
    if (!this.connected) this.io.fire('open');
    this.connected = true;
    log.push(`${this.index}:ready`);
    const serverTime = Date.now() + (token.skewMs ?? 0);
    const tokenExpiresAt = serverTime + (token.lifetimeMs ?? 3_600_000);
    this.packet('packet');
    this.fire('ready', { sessionId: `s${this.index}`, deviceId: 'd', userId: 'u', heartbeat: { interval, min: 1_000, max: 60_000, ttl: interval * 2.5, ...heartbeat }, serverTime, tokenExpiresAt });
  }
  /** The server ends the session: `session_ended`, then the transport closes. */
  end(reason: string, reconnect: boolean) {
    this.fire('session_ended', { reason, reconnect });
    this.connected = false;
    this.fire('disconnect', reconnect ? 'transport close' : 'io server disconnect');
  }
}

const sockets: FakeSocket[] = [];
/** Called for each socket the client opens (a scripted server that answers by itself). */
let onSocket: ((s: FakeSocket) => void) | undefined;
jest.mock('socket.io-client', () => ({
  io: (_url: string, opts: FakeSocket['opts']) => {
    const s = new FakeSocket();
    s.opts = opts;
    sockets.push(s);
    log.push(`${s.index}:io`);
    onSocket?.(s);
    return s;
  },
}));

/** The i-th socket the client opened (there must be one). */
function nth(i: number): FakeSocket {
  const socket = sockets.at(i);
  if (!socket) throw new Error(`the client opened ${sockets.length} sockets, not ${i + 1}`);
  return socket;
}

const flush = () => new Promise((r) => jest.requireActual<typeof import('node:timers')>('node:timers').setImmediate(r));

describe('PushClient scheduling (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    sockets.length = 0;
    log.length = 0;
    onSocket = undefined;
  });
  afterEach(() => jest.useRealTimers());

  it('beats on its own schedule, grows the interval after acked beats, and announces it', async () => {
    const client = new PushClient({ url: 'http://x', token: 't', network: 'wifi:a', heartbeatAckTimeoutMs: 500 });
    const s = sockets[0]!;
    s.ready(10_000);
    await flush();
    expect(client.interval).toBe(10_000);
    jest.advanceTimersByTime(9_999);
    expect(s.sent).toHaveLength(0);
    for (let i = 0; i < 3; i++) {
      jest.advanceTimersByTime(i === 0 ? 1 : 10_000);
      const beat = s.sent.at(-1)!;
      expect(beat).toMatchObject({ event: 'heartbeat', payload: { interval: 10_000, network: 'wifi:a', appState: 'background' } });
      beat.ack(null, { ok: true, interval: 10_000, ttl: 25_000, serverTime: 0 });
    }
    expect(client.interval).toBe(15_000); // three acked beats: one step up
    jest.advanceTimersByTime(14_999);
    expect(s.sent).toHaveLength(3);
    jest.advanceTimersByTime(1);
    expect(s.sent.at(-1)!.payload.interval).toBe(15_000);
    client.close();
  });

  it('declares the link dead after one missed ack, reconnects at once, and brackets the interval', async () => {
    const client = new PushClient({ url: 'http://x', token: 't', heartbeatAckTimeoutMs: 500 });
    const offline: string[] = [];
    client.on('offline', (why) => offline.push(why));
    sockets[0]!.ready(10_000);
    await flush();
    for (let i = 0; i < 3; i++) {
      jest.advanceTimersByTime(10_000);
      sockets[0]!.sent.at(-1)!.ack(null, { ok: true, interval: 10_000, ttl: 25_000, serverTime: 0 });
    }
    jest.advanceTimersByTime(15_000); // a beat at the grown interval: never acked
    expect(sockets[0]!.sent).toHaveLength(4);
    jest.advanceTimersByTime(499);
    expect(offline).toEqual([]);
    jest.advanceTimersByTime(1); // the ack timeout: dead link, no second try
    expect(offline).toEqual(['dead_link']);
    expect(sockets[0]!.sent).toHaveLength(4);
    jest.advanceTimersByTime(1); // setTimeout(0) is 1 ms in Node
    expect(sockets).toHaveLength(2); // reconnected without a backoff delay
    sockets[1]!.ready(10_000);
    await flush();
    expect(client.interval).toBe(12_500); // between 10 s (good) and 15 s (failed)
    client.close();
  });

  it('stays closed after a refused token without a token function: nothing is scheduled', () => {
    const client = new PushClient({ url: 'http://x', token: 'not-a-jwt' });
    const errors: unknown[] = [];
    client.on('error', (e) => void errors.push(e));
    sockets[0]!.fire('connect_error', Object.assign(new Error('unauthorized'), { data: { code: 'invalid_token', message: 'jwt malformed' } }));
    expect(errors).toEqual([{ code: 'invalid_token', message: 'jwt malformed', terminal: true }]);
    expect(client.state).toBe('closed');
    expect(jest.getTimerCount()).toBe(0); // no reconnect pending, however long one waits
    jest.advanceTimersByTime(3_600_000);
    expect(sockets).toHaveLength(1);
  });

  it('stays closed after its session was taken over: nothing is scheduled', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const replaced = jest.fn();
    client.on('replaced', replaced);
    sockets[0]!.ready(10_000);
    await flush();
    expect(jest.getTimerCount()).toBe(1); // the next beat
    sockets[0]!.fire('session_replaced', { sessionId: 's', reason: 'new_session' });
    sockets[0]!.connected = false;
    sockets[0]!.fire('disconnect', 'io server disconnect');
    expect(replaced).toHaveBeenCalledTimes(1);
    expect(client.state).toBe('closed');
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(3_600_000);
    expect(sockets).toHaveLength(1);
  });

  it('waits a jittered, growing delay before reconnecting after the transport drops', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const client = new PushClient({ url: 'http://x', token: 't', reconnect: { baseMs: 1_000, maxMs: 8_000 } });
    sockets[0]!.ready(10_000);
    await flush();
    sockets[0]!.connected = false;
    sockets[0]!.fire('disconnect', 'transport close');
    jest.advanceTimersByTime(499);
    expect(sockets).toHaveLength(1);
    jest.advanceTimersByTime(1); // 0.5 * 1000
    expect(sockets).toHaveLength(2);
    sockets[1]!.fire('connect_error', new Error('websocket error'));
    jest.advanceTimersByTime(999);
    expect(sockets).toHaveLength(2);
    jest.advanceTimersByTime(1); // 0.5 * 2000
    expect(sockets).toHaveLength(3);
    client.close();
    random.mockRestore();
  });
});

describe('PushClient token refresh and server-ended sessions (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    sockets.length = 0;
    log.length = 0;
    onSocket = undefined;
  });
  afterEach(() => jest.useRealTimers());

  const beatsAcked = (s: FakeSocket, skewMs = 0) =>
    s.autoReply.set('heartbeat', () => ({ ok: true, interval: 10_000, ttl: 25_000, serverTime: Date.now() + skewMs }));
  const auths = (s: FakeSocket) => s.sent.filter((e) => e.event === 'auth');
  /** Moves fake time and lets the promise work it started (the token function, acks) finish. */
  const advance = async (ms: number) => {
    jest.advanceTimersByTime(ms);
    await flush();
  };

  it('refreshes at 80 % of the remaining lifetime or 60 s before the end, whichever is earlier, and not before half', () => {
    expect(refreshDelay(3_600_000)).toBe(2_880_000); // 80 %
    expect(refreshDelay(300_000)).toBe(240_000); // both rules agree
    expect(refreshDelay(120_000)).toBe(60_000); // 60 s before the end
    expect(refreshDelay(3_000)).toBe(1_500); // a short-lived token: halfway, not at once in a loop
    expect(refreshDelay(0)).toBe(0);
    expect(refreshDelay(-5_000)).toBe(0); // already ran out (in the grace): at once
  });

  it('sends auth with a fresh token ahead of expiry on the server clock, and re-arms after each refresh', async () => {
    let minted = 0;
    const client = new PushClient({ url: 'http://x', token: async () => `token-${++minted}`, heartbeatAckTimeoutMs: 500 });
    const refreshed: number[] = [];
    client.on('refreshed', (r) => refreshed.push(r.tokenExpiresAt));
    const s = nth(0);
    beatsAcked(s, 3_600_000);
    s.ready(10_000, { lifetimeMs: 600_000, skewMs: 3_600_000 }); // the server's clock is an hour ahead of ours
    await flush();
    await advance(479_999);
    expect(auths(s)).toHaveLength(0);
    await advance(1); // 80 % of 10 min
    expect(auths(s).map((e) => e.payload)).toEqual([{ token: 'token-1' }]);
    const next = Date.now() + 3_600_000 + 120_000;
    auths(s).at(0)!.ack(null, { ok: true, tokenExpiresAt: next, topics: [] });
    await flush();
    expect(refreshed).toEqual([next]);
    expect(client.session?.tokenExpiresAt).toBe(next);
    await advance(59_999);
    expect(auths(s)).toHaveLength(1);
    await advance(1); // 60 s before the new token runs out
    expect(auths(s).map((e) => e.payload)).toEqual([{ token: 'token-1' }, { token: 'token-2' }]);
    client.close();
  });

  it('retries a refused or unanswered refresh with backoff, and never refreshes a static token', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const client = new PushClient({ url: 'http://x', token: () => 'fresh', heartbeatAckTimeoutMs: 500 });
    const errors: unknown[] = [];
    client.on('error', (e) => errors.push(e));
    const s = nth(0);
    beatsAcked(s);
    s.ready(10_000, { lifetimeMs: 10_000 });
    await flush();
    await advance(5_000);
    auths(s).at(0)!.ack(null, { ok: false, error: { code: 'identity_mismatch', message: 'another device' } });
    await flush();
    expect(errors).toEqual([{ code: 'identity_mismatch', message: 'another device', terminal: false }]);
    await advance(499);
    expect(auths(s)).toHaveLength(1);
    await advance(1); // 0.5 x 1 s
    expect(auths(s)).toHaveLength(2);
    await advance(500); // no ack within the ack timeout: failed too
    expect(errors).toHaveLength(2);
    await advance(1_000); // 0.5 x 2 s
    expect(auths(s)).toHaveLength(3);
    client.close();

    const fixed = new PushClient({ url: 'http://x', token: 'static' });
    beatsAcked(nth(1));
    nth(1).ready(10_000, { lifetimeMs: 10_000 });
    await flush();
    await advance(3_600_000);
    expect(auths(nth(1))).toHaveLength(0);
    fixed.close();
    random.mockRestore();
  });

  it('does not resend the token the session already runs on (a cached token), and retries later', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const client = new PushClient({ url: 'http://x', token: () => 'cached', heartbeatAckTimeoutMs: 500 });
    const errors: { code: string }[] = [];
    client.on('error', (e) => errors.push(e));
    const s = nth(0);
    beatsAcked(s);
    s.ready(10_000, { lifetimeMs: 600_000 });
    await flush();
    await advance(480_000);
    auths(s).at(0)!.ack(null, { ok: true, tokenExpiresAt: Date.now() + 120_000, topics: [] });
    await flush();
    await advance(60_000); // due again, but the function hands out the same token
    await advance(500); // and again after the backoff
    expect(auths(s)).toHaveLength(1);
    expect(errors.map((e) => e.code)).toEqual(['stale_token', 'stale_token']);
    client.close();
    random.mockRestore();
  });

  it('after a token_expired end, reconnects at once (the token function gives the fresh token)', async () => {
    const client = new PushClient({ url: 'http://x', token: () => 'fresh' });
    const ended: unknown[] = [];
    const offline: string[] = [];
    client.on('ended', (e) => ended.push(e));
    client.on('offline', (why) => offline.push(why));
    nth(0).ready(10_000);
    await flush();
    nth(0).end('token_expired', true);
    expect(ended).toEqual([{ reason: 'token_expired', reconnect: true }]);
    expect(offline).toEqual(['token_expired']);
    await advance(1); // setTimeout(0)
    expect(sockets).toHaveLength(2);
    client.close();
  });

  it('backs off after slow_consumer and rate_limited ends, comes back at once after expired', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const client = new PushClient({ url: 'http://x', token: 't', reconnect: { baseMs: 1_000, maxMs: 8_000 } });
    nth(0).ready(10_000);
    await flush();
    nth(0).end('slow_consumer', true);
    await advance(499);
    expect(sockets).toHaveLength(1);
    await advance(1); // 0.5 x 1 s
    expect(sockets).toHaveLength(2);
    nth(1).end('rate_limited', true); // not ready yet: the backoff keeps growing
    await advance(999);
    expect(sockets).toHaveLength(2);
    await advance(1); // 0.5 x 2 s
    expect(sockets).toHaveLength(3);
    nth(2).end('expired', true);
    await advance(1);
    expect(sockets).toHaveLength(4);
    client.close();
    random.mockRestore();
  });

  it('stays closed when the server says not to reconnect, and gives up on token_expired without a token function', async () => {
    const kicked = new PushClient({ url: 'http://x', token: () => 't' });
    nth(0).ready(10_000);
    await flush();
    nth(0).end('kicked', false);
    await advance(60_000);
    expect(sockets).toHaveLength(1);
    expect(kicked.state).toBe('closed');

    const fixed = new PushClient({ url: 'http://x', token: 'static' });
    const errors: unknown[] = [];
    fixed.on('error', (e) => errors.push(e));
    nth(1).ready(10_000);
    await flush();
    nth(1).end('token_expired', true);
    await advance(60_000);
    expect(sockets).toHaveLength(2);
    expect(fixed.state).toBe('closed');
    expect(errors).toEqual([{ code: 'token_expired', message: expect.any(String), terminal: true }]);
  });
});

describe('PushClient on real links: ack timeouts, make-before-break, idle gaps (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    sockets.length = 0;
    log.length = 0;
    onSocket = undefined;
  });
  afterEach(() => jest.useRealTimers());

  const ok = () => ({ ok: true, interval: 0, ttl: 0, serverTime: Date.now() });
  const lastBeat = (s: FakeSocket) => s.sent.filter((e) => e.event === 'heartbeat').at(-1)!;

  it('derives the ack timeout from the handshake, then from measured heartbeat round trips (3 srtt + 4 rttvar, 1.5-10 s)', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    jest.advanceTimersByTime(2_000); // a slow handshake: at least two round trips, so an RTT of at most 1 s
    nth(0).ready(10_000);
    await flush();
    expect(client.srtt).toBe(1_000);
    expect(client.ackTimeoutMs).toBe(5_000); // 3 x 1000 + 4 x 500
    const expected = { srtt: 1_000, rttvar: 500 };
    for (let i = 0; i < 20; i++) {
      const timeout = client.ackTimeoutMs;
      jest.advanceTimersByTime(client.interval!);
      expect(lastBeat(nth(0)).timeoutMs).toBe(timeout);
      jest.advanceTimersByTime(80); // the ack takes 80 ms
      lastBeat(nth(0)).ack(null, ok());
      expected.rttvar = 0.75 * expected.rttvar + 0.25 * Math.abs(expected.srtt - 80);
      expected.srtt = 0.875 * expected.srtt + 0.125 * 80;
      expect(client.srtt).toBeCloseTo(expected.srtt, 6);
      expect(client.ackTimeoutMs).toBe(Math.round(Math.max(1_500, 3 * expected.srtt + 4 * expected.rttvar)));
    }
    expect(client.ackTimeoutMs).toBe(1_500); // a fast link: the floor
    for (let i = 0; i < 30; i++) {
      const timeout = client.ackTimeoutMs;
      jest.advanceTimersByTime(client.interval!);
      jest.advanceTimersByTime(timeout - 100); // the link gets slower and slower, each ack just in time
      lastBeat(nth(0)).ack(null, ok());
    }
    expect(client.ackTimeoutMs).toBe(10_000); // the ceiling
    client.close();

    const pinned = new PushClient({ url: 'http://x', token: 't', heartbeatAckTimeoutMs: 700 });
    jest.advanceTimersByTime(2_000);
    nth(1).ready(10_000);
    await flush();
    expect(pinned.ackTimeoutMs).toBe(700);
    jest.advanceTimersByTime(10_000);
    expect(lastBeat(nth(1)).timeoutMs).toBe(700);
    pinned.close();
  });

  it('announces the round trip it expects with the handshake: half the handshake so far (token function excluded), or the last srtt if larger', async () => {
    /** What Socket.IO would send in the CONNECT packet, the token function run to its end. */
    const handshakeAuth = (s: FakeSocket) => new Promise<Record<string, unknown>>((resolve) => s.opts.auth!(resolve));
    let tokenDelay = 0;
    const client = new PushClient({ url: 'http://x', token: () => new Promise((r) => setTimeout(() => r('t'), tokenDelay)) });
    jest.advanceTimersByTime(900); // transport connect and Engine.IO's open: two round trips of 450 ms
    tokenDelay = 3_000; // a slow token service is not the link
    const first = handshakeAuth(nth(0));
    await jest.advanceTimersByTimeAsync(3_000);
    expect(await first).toEqual({ token: 't', rtt: 450 });
    nth(0).ready(10_000);
    await flush();
    for (let i = 0; i < 5; i++) {
      jest.advanceTimersByTime(client.interval!);
      jest.advanceTimersByTime(1_200); // the link got slower
      lastBeat(nth(0)).ack(null, ok());
    }
    const srtt = client.srtt!;
    expect(srtt).toBeGreaterThan(800);
    jest.advanceTimersByTime(client.interval! + client.ackTimeoutMs); // a beat without an ack: dead link
    await jest.advanceTimersByTimeAsync(1);
    jest.advanceTimersByTime(100); // a quick handshake on the new link, but the last one was slow
    tokenDelay = 0;
    const second = handshakeAuth(nth(1));
    await jest.advanceTimersByTimeAsync(0);
    expect(await second).toEqual({ token: 't', rtt: Math.round(srtt) });
    client.close();
  });

  it('reports a dead link within interval + 1.5 s of the cut on a clean link', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const offline: number[] = [];
    client.on('offline', () => offline.push(Date.now()));
    nth(0).ready(10_000);
    await flush();
    jest.advanceTimersByTime(10_000);
    lastBeat(nth(0)).ack(null, ok());
    const cut = Date.now(); // nothing gets through from here on
    await jest.advanceTimersByTimeAsync(10_000 + 1_500);
    expect(offline).toEqual([cut + 10_000 + 1_500]);
    client.close();
  });

  it('makes before it breaks: the dead socket stays open, deaf, until the new session is ready', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const seen: string[] = [];
    const states: string[] = [];
    client.on('notification', (n) => void seen.push(n.id));
    client.on('offline', (why) => states.push(`offline:${why}`));
    client.on('online', () => states.push('online'));
    client.on('replaced', () => states.push('replaced'));
    nth(0).ready(10_000);
    await flush();
    await jest.advanceTimersByTimeAsync(10_000 + 1_500 + 1); // a beat, no ack, reconnect
    expect(sockets).toHaveLength(2);
    expect(nth(0).connected).toBe(true); // no FIN racing the new connection to the server
    // Whatever the old socket still brings is not this client's business any more.
    const ack = jest.fn();
    nth(0).fire('notification', { id: 'late', data: {} }, ack);
    nth(0).fire('session_replaced', { sessionId: 's0', reason: 'new_session' });
    expect(seen).toEqual([]);
    expect(ack).not.toHaveBeenCalled(); // unacked: the gateway sends it again on the new session
    nth(1).ready(10_000);
    await flush();
    expect(log).toEqual(['0:io', '0:ready', '1:io', '1:ready', '0:disconnect']);
    expect(nth(0).handlers.size).toBe(0); // closed and forgotten, no listener left behind
    expect(states).toEqual(['online', 'offline:dead_link', 'online']);
    expect(client.state).toBe('online');
    client.close();
  });

  it('closes the parked socket after the old session ttl, or on close(), if no new session comes', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.99); // the next attempt in 59.4 s
    const client = new PushClient({ url: 'http://x', token: 't', reconnect: { baseMs: 60_000, maxMs: 60_000 } });
    nth(0).ready(10_000); // ttl 25 s
    await flush();
    await jest.advanceTimersByTimeAsync(10_000 + 1_500 + 1);
    nth(1).fire('connect_error', new Error('websocket error')); // the network is really gone
    await jest.advanceTimersByTimeAsync(24_998);
    expect(nth(0).connected).toBe(true);
    await jest.advanceTimersByTimeAsync(2);
    expect(nth(0).connected).toBe(false);
    client.close();

    const other = new PushClient({ url: 'http://x', token: 't' });
    nth(2).ready(10_000);
    await flush();
    await jest.advanceTimersByTimeAsync(10_000 + 1_500 + 1);
    expect(sockets).toHaveLength(4);
    expect(nth(2).connected).toBe(true);
    other.close();
    expect(nth(2).connected).toBe(false);
    expect(nth(3).connected).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
    random.mockRestore();
  });

  it('tells the app the ttl each acked beat was granted, and none for a beat the server refused', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const beats: object[] = [];
    client.on('heartbeat', (b) => void beats.push(b));
    nth(0).autoReply.set('heartbeat', () => ({ ok: true, interval: 10_000, ttl: 28_123, serverTime: Date.now() }));
    nth(0).ready(10_000);
    await flush();
    jest.advanceTimersByTime(10_000);
    nth(0).autoReply.set('heartbeat', () => ({ ok: false, error: { code: 'unavailable', message: 'store unavailable' } }));
    jest.advanceTimersByTime(10_000);
    expect(beats).toEqual([
      { interval: 10_000, ok: true, idle: true, ttl: 28_123 },
      { interval: 10_000, ok: false, idle: true },
    ]);
    client.close();
  });

  it('learns only from idle gaps: a ping, a notification or its ack in the gap is neither success nor failure', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const beats: { ok: boolean; idle: boolean }[] = [];
    client.on('heartbeat', ({ ok, idle }) => void beats.push({ ok, idle }));
    nth(0).autoReply.set('heartbeat', ok);
    nth(0).ready(10_000);
    await flush();
    const traffic = [() => nth(0).ping(), () => nth(0).packet('packet'), () => nth(0).packet('packetCreate')];
    for (const cross of [...traffic, ...traffic]) {
      jest.advanceTimersByTime(5_000);
      cross();
      jest.advanceTimersByTime(5_000);
    }
    expect(beats).toEqual(Array(6).fill({ ok: true, idle: false }));
    expect(client.interval).toBe(10_000); // six acked beats, but none proves a 10 s idle gap survives
    jest.advanceTimersByTime(30_000);
    expect(client.interval).toBe(15_000); // three idle gaps do
    // A dead link after a gap with traffic does not count against the interval either.
    nth(0).autoReply.delete('heartbeat');
    jest.advanceTimersByTime(7_000);
    nth(0).ping();
    await jest.advanceTimersByTimeAsync(8_000 + 1_500 + 1);
    expect(beats.at(-1)).toEqual({ ok: false, idle: false });
    nth(1).ready(10_000);
    await flush();
    expect(client.interval).toBe(15_000);
    client.close();
  });
});

describe('PushClient network changes (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    sockets.length = 0;
    log.length = 0;
    onSocket = undefined;
  });
  afterEach(() => jest.useRealTimers());

  it('takes the recommendation as known good only for the network it was given for', async () => {
    const client = new PushClient({ url: 'http://x', token: 't', network: 'wifi:a' });
    nth(0).ready(10_000, {}, { recommended: 20_000 });
    await flush();
    expect(client.interval).toBe(20_000);
    client.setNetwork('cell:b'); // nothing learned there, and the recommendation was for wifi:a
    await flush();
    expect(client.interval).toBe(10_000);
    client.setNetwork('wifi:a');
    await flush();
    expect(client.interval).toBe(20_000);
    client.close();
  });
});

describe('PushClient native push registration and shown ids (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    sockets.length = 0;
    log.length = 0;
    onSocket = undefined;
  });
  afterEach(() => jest.useRealTimers());

  const subscription = { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', expirationTime: null, keys: { p256dh: 'BP', auth: 'au' } };

  it('registers at the next session start when offline, with a PushSubscription as its JSON; rejects with the gateway error', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    let done = false;
    const registered = client.registerPush({ provider: 'webpush', subscription: { toJSON: () => subscription } }).then(() => (done = true));
    await flush();
    expect(nth(0).sent).toEqual([]);
    nth(0).ready(10_000);
    await flush();
    const request = nth(0).sent.find((e) => e.event === 'register_push')!;
    expect(request.payload).toEqual({ provider: 'webpush', subscription });
    expect(done).toBe(false);
    request.ack(null, { ok: true });
    await registered;
    const refused = client.registerPush({ provider: 'apns', token: 'zz' });
    await flush();
    nth(0).sent.find((e) => e.event === 'register_push' && e.payload.provider === 'apns')!.ack(null, { ok: false, error: { code: 'invalid_push_target', message: 'apns takes a token' } });
    await expect(refused).rejects.toMatchObject({ code: 'invalid_push_target', message: 'apns takes a token' });
    const unregistered = client.unregisterPush();
    await flush();
    nth(0).sent.find((e) => e.event === 'unregister_push')!.ack(null, { ok: true });
    await unregistered;
    client.close();
  });

  it('rejects a registration still waiting for a session when the client is closed', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const waiting = client.registerPush({ provider: 'fcm', token: 'f'.repeat(40) });
    client.close();
    await expect(waiting).rejects.toThrow('client closed');
    await expect(client.registerPush({ provider: 'fcm', token: 'f'.repeat(40) })).rejects.toThrow('client closed');
  });

  it('drops (but acks) a socket copy of a notification the app already showed from a native push', async () => {
    const client = new PushClient({ url: 'http://x', token: 't' });
    const seen: string[] = [];
    client.on('notification', (n) => void seen.push(n.id));
    nth(0).ready(10_000);
    await flush();
    client.markShown('n-shown');
    const acks: string[] = [];
    for (const id of ['n-shown', 'n-new']) nth(0).fire('notification', { id, data: {}, createdAt: 0 }, () => acks.push(id));
    await flush();
    expect(seen).toEqual(['n-new']);
    expect(acks).toEqual(['n-shown', 'n-new']);
    client.close();
  });
});

/**
 * The lab's NAT, played against the client with fake timers: a mapping idle for T or longer is
 * dropped, and the server's Engine.IO ping (every `pingEvery`, by default the heartbeat max, as the
 * gateway stretches it) keeps it alive when it gets through.
 */
describe('PushClient behind a simulated NAT with server pings (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    sockets.length = 0;
    log.length = 0;
  });
  afterEach(() => {
    onSocket = undefined;
    jest.useRealTimers();
  });

  /** Runs a client for `forMs` behind a NAT of idle timeout `T`; every connection succeeds. */
  async function behindNat(T: number, forMs: number, heartbeat: { interval: number; max: number; recommended?: number }, pingEvery = heartbeat.max) {
    const pings: ReturnType<typeof setInterval>[] = [];
    onSocket = (s) => {
      let last = Date.now();
      let dropped = false;
      const cross = () => {
        if (Date.now() - last >= T) dropped = true;
        if (!dropped) last = Date.now();
        return !dropped;
      };
      s.autoReply.set('heartbeat', () => (cross() && cross() ? { ok: true, interval: 0, ttl: 0, serverTime: Date.now() } : undefined));
      pings.push(setInterval(() => s.connected && cross() && s.ping(), pingEvery));
      setTimeout(() => s.ready(heartbeat.interval, {}, { min: 1_000, ...heartbeat }), 50);
    };
    const client = new PushClient({ url: 'http://x', token: 't', network: 'nat' });
    const lost: number[] = [];
    const intervals: number[] = [];
    client.on('offline', (why) => why === 'dead_link' && lost.push(Date.now()));
    client.on('heartbeat', (b) => b.ok && intervals.at(-1) !== b.interval && intervals.push(b.interval));
    await jest.advanceTimersByTimeAsync(forMs);
    const interval = client.interval;
    client.close();
    pings.forEach(clearInterval);
    return { lost, intervals, interval };
  }

  it('settles within [0.7 T, T) losing at most 3 links, though pings land in some gaps', async () => {
    for (const [T, start, max] of [
      [12_000, 4_000, 30_000],
      [30_000, 4_000, 120_000],
      [90_000, 20_000, 300_000],
    ] as const) {
      const run = await behindNat(T, 30 * 60_000, { interval: start, max });
      expect(run.lost.length).toBeLessThanOrEqual(3);
      expect(run.interval).toBeGreaterThanOrEqual(0.7 * T);
      expect(run.interval).toBeLessThan(T);
    }
  });

  it('a new device given a recommendation of 70-100 % of T loses no link in its first 100 s', async () => {
    for (const share of [0.7, 0.85, 0.99]) {
      const run = await behindNat(12_000, 100_000, { interval: 4_000, max: 30_000, recommended: Math.round(share * 12_000) });
      expect(run.lost).toEqual([]);
    }
  });
});
