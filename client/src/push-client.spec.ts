import { PushClient, refreshDelay } from './push-client';

/** A scripted stand-in for a socket.io-client socket: the test plays the server. */
class FakeSocket {
  connected = false;
  handlers = new Map<string, ((...args: any[]) => void)[]>();
  sent: { event: string; payload: any; ack: (err: Error | null, reply?: unknown) => void }[] = [];
  private pendingTimeout = 0;
  /** Replies the scripted server gives at once, by event (heartbeats that must not fail meanwhile). */
  autoReply = new Map<string, () => unknown>();
  on(event: string, fn: (...args: any[]) => void) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
    return this;
  }
  fire(event: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(event) ?? []) fn(...args);
  }
  timeout(ms: number) {
    this.pendingTimeout = ms;
    return this;
  }
  emit(event: string, payload: unknown, ack: (err: Error | null, reply?: unknown) => void) {
    const entry = { event, payload, ack };
    const reply = this.autoReply.get(event);
    if (reply) return ack(null, reply());
    this.sent.push(entry);
    const timer = setTimeout(() => ack(new Error('operation has timed out')), this.pendingTimeout);
    entry.ack = (err, reply) => (clearTimeout(timer), ack(err, reply));
  }
  disconnect() {
    this.connected = false;
    this.fire('disconnect', 'io client disconnect');
  }
  close() {}
  removeAllListeners() {
    this.handlers.clear();
  }
  /** The server side of a session start; the server's clock may differ from ours by `skewMs`. */
  ready(interval: number, token: { lifetimeMs?: number; skewMs?: number } = {}) {
    this.connected = true;
    const serverTime = Date.now() + (token.skewMs ?? 0);
    const tokenExpiresAt = serverTime + (token.lifetimeMs ?? 3_600_000);
    this.fire('ready', { sessionId: 's', deviceId: 'd', userId: 'u', heartbeat: { interval, min: 1_000, max: 60_000, ttl: interval * 2.5 }, serverTime, tokenExpiresAt });
  }
  /** The server ends the session: `session_ended`, then the transport closes. */
  end(reason: string, reconnect: boolean) {
    this.fire('session_ended', { reason, reconnect });
    this.connected = false;
    this.fire('disconnect', reconnect ? 'transport close' : 'io server disconnect');
  }
}

const sockets: FakeSocket[] = [];
jest.mock('socket.io-client', () => ({
  io: () => {
    const s = new FakeSocket();
    sockets.push(s);
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

  it('declares the link dead after two missed acks, reconnects at once, and backs the interval off', async () => {
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
    jest.advanceTimersByTime(500); // first ack timeout: the second beat goes out at once
    expect(sockets[0]!.sent).toHaveLength(5);
    jest.advanceTimersByTime(500); // second missed ack: dead link
    expect(offline).toEqual(['dead_link']);
    jest.advanceTimersByTime(1); // setTimeout(0) is 1 ms in Node
    expect(sockets).toHaveLength(2); // reconnected without a backoff delay
    sockets[1]!.ready(10_000);
    await flush();
    expect(client.interval).toBe(10_000); // back to the last good value, now stable
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
