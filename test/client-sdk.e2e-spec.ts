import { createPushClient, PushClient } from '../client/src';
import type { Notification, PushClientEvents } from '../client/src';
import { api, metric, pushesSettled, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { MAX_RTT_SLACK_MS } from '../src/presence/heartbeat-policy';
import { FreezableProxy } from './support/redis-servers';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TEST_API_KEY } from './support/tokens';
import Redis from 'ioredis';

type Json = Record<string, any>;

/**
 * The SDK against the real gateway and Redis. The gateway's clock is a FakeClock: a test ends a
 * session the way the product does, by moving the clock past its TTL (the sweeper or the next
 * heartbeat retires it). The SDK's own timers are real.
 */
describe('client SDK (real gateway, real Redis)', () => {
  const prefix = uniquePrefix('sdk');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  const TTL = 1_000; // 2.5 x HEARTBEAT_INTERVAL_MS
  // The SDK announces the round trip it expects (auth.rtt, then rtt in each heartbeat), and the
  // gateway widens the TTL by up to MAX_RTT_SLACK_MS for it: on a busy machine a loopback
  // handshake can take tens of ms. Moving the clock this far ends a session whatever it announced.
  const PAST_ANY_TTL = TTL + MAX_RTT_SLACK_MS + 1;
  // ACK_TIMEOUT_MS bounds how long the gateway waits for an ack that will never come (the
  // autoAck: false case) before the app can close.
  const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, HEARTBEAT_INTERVAL_MS: '400', HEARTBEAT_MIN_MS: '200', HEARTBEAT_MAX_MS: '2000', ACK_TIMEOUT_MS: '1000' };
  let gw: TestApp;
  const clients: PushClient[] = [];

  const client = (deviceId: string, extra: Partial<Parameters<typeof createPushClient>[0]> = {}, url = gw.url) => {
    const c = createPushClient({ url, token: deviceToken({ sub: 'sdk-user', deviceId }), transports: ['websocket'], heartbeatAckTimeoutMs: 300, reconnect: { baseMs: 100, maxMs: 1_000 }, ...extra });
    clients.push(c);
    return c;
  };
  const online = (c: PushClient) => new Promise<void>((resolve) => c.on('online', () => resolve()));
  const statusOf = async (id: string) => ((await (await api(gw.url, `/v1/notifications/${id}`)).json()) as Json).targets[0].status as string;

  beforeAll(async () => {
    gw = await startTestApp(env, clock);
  });
  afterEach(() => clients.splice(0).forEach((c) => c.close()));
  afterAll(async () => {
    await pushesSettled(gw.url);
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('connects, beats on its own schedule, and acks a notification after the handler returns', async () => {
    const c = client('sdk-1', { network: 'wifi:sdk' });
    const beats: Json[] = [];
    c.on('heartbeat', (b) => beats.push(b));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handling!: (id: string) => void;
    const inHandler = new Promise<string>((resolve) => (handling = resolve));
    c.on('notification', async (n: Notification) => {
      handling(n.id);
      await gate; // the app is still busy with it
    });
    await online(c);
    expect(c.session).toMatchObject({ deviceId: 'sdk-1', heartbeat: { interval: 400 } });
    await waitFor(() => beats.filter((b) => b.ok).length >= 2, 3_000);
    const device = (await (await api(gw.url, '/v1/devices/sdk-1')).json()) as Json;
    expect(device).toMatchObject({ online: true, network: 'wifi:sdk', appState: 'background' });
    const acked = await metric(gw.url, 'push_gateway_pushes_acked_total');
    const answer = (await (await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['sdk-1'], data: { n: 1 } } })).json()) as Json;
    expect(await inHandler).toBe(answer.id);
    // A heartbeat sent now travels behind any ack already sent on this socket, and the gateway
    // counts an ack before it answers anything after it: still none counted, so none was sent.
    const beaten = new Promise<void>((resolve) => c.on('heartbeat', (b) => b.ok && resolve()));
    c.setForeground(true); // beats at once
    await beaten;
    expect(await metric(gw.url, 'push_gateway_pushes_acked_total')).toBe(acked);
    release();
    await waitFor(async () => (await statusOf(answer.id)) === 'delivered');
    expect(await metric(gw.url, 'push_gateway_pushes_acked_total')).toBe(acked + 1);
  });

  it('reconnects by itself after the server drops the link, with a fresh token from the token function', async () => {
    let tokens = 0;
    const c = client('sdk-drop', { token: () => (tokens++, deviceToken({ sub: 'sdk-user', deviceId: 'sdk-drop' })) });
    await online(c);
    const first = c.session!.sessionId;
    const back = online(c);
    clock.advance(PAST_ANY_TTL); // the gateway retires the session and closes its transport
    await back;
    expect(c.session!.sessionId).not.toBe(first);
    expect(tokens).toBe(2);
  });

  it('hands a redelivered notification to the app once, and acks the duplicate', async () => {
    const seen: string[] = [];
    const c = client('sdk-dup', { autoAck: false });
    c.on('notification', (n: Notification) => void seen.push(n.id)); // handled, but never acked
    await online(c);
    const answer = (await (await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['sdk-dup'], data: { text: 'once' }, ttl: 60 } })).json()) as Json;
    await waitFor(() => seen.length === 1);
    const back = online(c);
    clock.advance(PAST_ANY_TTL); // the gateway retires the session and closes its transport
    await back; // the gateway sends it again on the new connection; the SDK drops it but acks it
    await waitFor(async () => (await statusOf(answer.id)) === 'delivered');
    expect(seen).toEqual([answer.id]);
  });

  it('detects a dead link when the server stops acking and reconnects at once, the device never offline', async () => {
    const proxy = await new FreezableProxy(Number(new URL(gw.url).port)).start();
    try {
      const c = client('sdk-dead', {}, `http://127.0.0.1:${proxy.port}`);
      await online(c);
      const offline = new Promise<string>((resolve) => c.on('offline', resolve));
      let isBack = false;
      const back = online(c).then(() => (isBack = true));
      const sockets = await metric(gw.url, 'push_gateway_connected_devices');
      const frozenAt = Date.now();
      proxy.freeze(); // the TCP connection stays up, nothing gets through: no more acks
      expect(await offline).toBe('dead_link');
      // Found one ack timeout after the next beat, not after TCP or engine timeouts.
      expect(Date.now() - frozenAt).toBeLessThan(2_000 + 300 + 500);
      // The new session replaces the old one: the device is never seen offline on the way. (The
      // frozen proxy also holds back the old socket's close, so the make-before-break order itself
      // is shown by push-client.spec.ts, not here.)
      const seen = new Set<boolean>();
      while (!isBack) seen.add(((await (await api(gw.url, '/v1/devices/sdk-dead')).json()) as Json).online as boolean);
      await back;
      await waitFor(async () => (await metric(gw.url, 'push_gateway_connected_devices')) === sockets); // the old socket is gone server-side too
      expect(seen).toEqual(new Set([true]));
      expect(((await (await api(gw.url, '/v1/devices/sdk-dead')).json()) as Json).online).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('stops on a refused token without a token function, instead of looping', async () => {
    const c = client('sdk-bad', { token: 'not-a-jwt' });
    const errors: Json[] = [];
    c.on('error', (e) => errors.push(e));
    await waitFor(() => errors.length === 1);
    // Decided with the error; push-client.spec.ts shows no reconnect timer is left behind.
    expect(errors).toEqual([{ code: 'invalid_token', message: expect.any(String), terminal: true }]);
    expect(c.state).toBe('closed');
  });

  it('surfaces a takeover as replaced, without reconnecting', async () => {
    const first = client('sdk-twin');
    await online(first);
    const replaced = new Promise<void>((resolve) => first.on('replaced', () => resolve()));
    const second = client('sdk-twin');
    await online(second);
    await replaced;
    // Decided with the event; push-client.spec.ts shows no reconnect timer is left behind.
    expect(first.state).toBe('closed');
    expect(second.state).toBe('online');
  });

  it('subscribes to topics and receives topic notifications', async () => {
    const c = client('sdk-topics', { token: deviceToken({ sub: 'sdk-user', deviceId: 'sdk-topics', topics: ['news.*'] }) });
    const got: Notification[] = [];
    c.on('notification', (n: Notification) => void got.push(n));
    await online(c);
    expect(await c.subscribe(['news.local'])).toEqual(['news.local']);
    await expect(c.subscribe(['secret'])).rejects.toMatchObject({ code: 'forbidden_topic', topics: ['secret'] });
    await api(gw.url, '/v1/notifications', { method: 'POST', json: { topic: 'news.local', data: { text: 'hi' } } });
    await waitFor(() => got.length === 1);
    expect(await c.unsubscribe(['news.local'])).toEqual([]);
  });
});

/** Resolves with the first argument of the client's next `event`, rejects after `timeoutMs`. */
function nextClientEvent<E extends keyof PushClientEvents>(c: PushClient, event: E, timeoutMs = 5_000): Promise<Parameters<PushClientEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
    const off = c.on(event, ((first: Parameters<PushClientEvents[E]>[0]) => {
      clearTimeout(timer);
      off();
      resolve(first);
    }) as PushClientEvents[E]);
  });
}

describe('client SDK and token lifetime (real gateway, real time, 2 s tokens)', () => {
  const GRACE = 1_000;
  const prefix = uniquePrefix('sdk-token');
  let gw: TestApp;
  const clients: PushClient[] = [];
  /** A token that runs out `lifetimeMs` from now (a fractional exp: JWT's NumericDate allows it). */
  const mint = (deviceId: string, lifetimeMs = 2_000) => deviceToken({ sub: 'sdk-user', deviceId, exp: (Date.now() + lifetimeMs) / 1000 }, {});

  beforeAll(async () => {
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, TOKEN_EXPIRY_GRACE_MS: String(GRACE), SWEEP_INTERVAL_MS: '50' });
  });
  afterEach(() => clients.splice(0).forEach((c) => c.close()));
  afterAll(async () => {
    await gw.close();
    const redis = new Redis(testRedisUrl());
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('refreshes its token ahead of expiry by itself, so the session outlives its first token', async () => {
    const c = createPushClient({ url: gw.url, token: () => mint('sdk-refresh'), transports: ['websocket'] });
    clients.push(c);
    await nextClientEvent(c, 'online');
    const { sessionId, tokenExpiresAt: first } = c.session!;
    const ended: unknown[] = [];
    c.on('ended', (e) => ended.push(e));
    const refreshes: number[] = [];
    c.on('refreshed', (r) => refreshes.push(r.tokenExpiresAt));
    // Refreshed halfway through each 2 s token, until well past the first one's expiry and grace.
    await waitFor(() => refreshes.length >= 3 && Date.now() > first + GRACE + 100, 8_000);
    expect(refreshes.every((at) => at > first)).toBe(true);
    expect(ended).toEqual([]);
    expect(c.session?.sessionId).toBe(sessionId);
    expect(c.state).toBe('online');
    const device = (await (await api(gw.url, '/v1/devices/sdk-refresh')).json()) as Json;
    expect(device).toMatchObject({ online: true });
  });

  it('recovers from a token_expired end with a fresh token from the token function', async () => {
    let tokenService = true;
    const c = createPushClient({
      url: gw.url,
      token: () => {
        if (!tokenService) throw new Error('token service unavailable');
        return mint('sdk-lapse');
      },
      transports: ['websocket'],
      reconnect: { baseMs: 20_000, maxMs: 20_000 }, // only an immediate reconnect passes this test
    });
    clients.push(c);
    await nextClientEvent(c, 'online');
    const first = c.session!.sessionId;
    tokenService = false; // refreshes fail: the token runs out, then the grace
    const failures: string[] = [];
    c.on('error', (e) => failures.push(e.code));
    expect(await nextClientEvent(c, 'ended', 8_000)).toEqual({ reason: 'token_expired', reconnect: true });
    expect(failures).toContain('refresh_failed');
    tokenService = true;
    await nextClientEvent(c, 'online', 3_000);
    expect(c.session!.sessionId).not.toBe(first);
    const device = (await (await api(gw.url, '/v1/devices/sdk-lapse')).json()) as Json;
    expect(device).toMatchObject({ online: true });
  });
});

describe('client SDK and a draining instance', () => {
  it('reconnects at once after the drain hint, landing on another instance', async () => {
    const prefix = uniquePrefix('sdk-drain');
    const env = { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix };
    const a = await startTestApp({ ...env, INSTANCE_ID: 'sdk-a' });
    const b = await startTestApp({ ...env, INSTANCE_ID: 'sdk-b' });
    const lb = await new FreezableProxy(Number(new URL(a.url).port)).start();
    // A long backoff: only the drain hint can explain a quick reconnect.
    const c = createPushClient({ url: `http://127.0.0.1:${lb.port}`, token: deviceToken({ sub: 'u', deviceId: 'sdk-drained' }), transports: ['websocket'], reconnect: { baseMs: 20_000, maxMs: 20_000 } });
    try {
      await new Promise<void>((resolve) => c.on('online', () => resolve()));
      expect(c.session).toBeDefined();
      lb.targetPort = Number(new URL(b.url).port);
      const back = new Promise<void>((resolve) => c.on('online', () => resolve()));
      const started = Date.now();
      await a.close(); // SIGTERM path: server_draining, then the transport closes
      await back;
      expect(Date.now() - started).toBeLessThan(3_000);
      const device = (await (await api(b.url, '/v1/devices/sdk-drained')).json()) as Json;
      expect(device).toMatchObject({ online: true, instanceId: 'sdk-b' });
    } finally {
      c.close();
      await b.close();
      await lb.stop();
      const redis = new Redis(testRedisUrl());
      await deleteKeys(redis, prefix);
      await redis.quit();
    }
  });
});

describe('the built SDK packages in Node', () => {
  it('connects and receives through both the ESM and the CommonJS build', async () => {
    const { execFile } = await import('node:child_process');
    const gw = await startTestApp({});
    const run = (code: string) =>
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--input-type=module', '-e', code], { cwd: `${__dirname}/..`, timeout: 15_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
        ),
      );
    const script = (load: string, deviceId: string) => `
      ${load}
      const c = createPushClient({ url: ${JSON.stringify(gw.url)}, token: ${JSON.stringify(deviceToken({ sub: 'u', deviceId }))}, transports: ['websocket'] });
      c.on('online', () => fetch(${JSON.stringify(`${gw.url}/v1/notifications`)}, { method: 'POST',
        headers: { authorization: 'Bearer ${TEST_API_KEY}', 'content-type': 'application/json' },
        body: JSON.stringify({ deviceIds: ['${deviceId}'], data: { text: 'hi' } }) }));
      c.on('notification', (n, ctx) => { console.log('got ' + n.data.text + ' ' + n.id); ctx.ack(); c.close(); });`;
    const receivedAndAcked = async (output: string) => {
      const [, id] = /^got hi (\S+)$/.exec(output) ?? [];
      expect(output).toBe(`got hi ${id}`);
      // Acked before close: the receipt is stored and the gateway holds no ack timer for it.
      await waitFor(async () => ((await (await api(gw.url, `/v1/notifications/${id}`)).json()) as Json).targets[0].status === 'delivered');
    };
    try {
      await receivedAndAcked(await run(script(`import { createPushClient } from '@push-gateway/client';`, 'esm-dev')));
      await receivedAndAcked(await run(script(`import { createRequire } from 'node:module'; const { createPushClient } = createRequire(import.meta.url)('@push-gateway/client');`, 'cjs-dev')));
    } finally {
      await gw.close();
    }
  });
});
