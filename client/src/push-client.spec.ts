import { PushClient } from './push-client';

/** A scripted stand-in for a socket.io-client socket: the test plays the server. */
class FakeSocket {
  connected = false;
  handlers = new Map<string, ((...args: any[]) => void)[]>();
  sent: { event: string; payload: any; ack: (err: Error | null, reply?: unknown) => void }[] = [];
  private pendingTimeout = 0;
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
  /** The server side of a session start. */
  ready(interval: number) {
    this.connected = true;
    this.fire('ready', { sessionId: 's', deviceId: 'd', userId: 'u', heartbeat: { interval, min: 1_000, max: 60_000, ttl: interval * 2.5 }, serverTime: 0 });
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
