import Redis from 'ioredis';
import { request } from 'node:http';
import { api, metric, startTestApp, TestApp } from './support/app';
import { FakeClock } from './support/fake-clock';
import { deleteKeys, deviceKey, redisCommandsDuring, testClusterNodes, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { TEST_API_KEY } from './support/tokens';
import { PresenceStore } from '../src/presence/presence.store';

type Json = Record<string, any>;

/** A moment where a one-minute window starts: every request of a test falls in one window. */
const WINDOW_START = 1_700_000_040_000;
const WRONG_KEY = 'wrong-key-wrong-key-wrong-key';

/** The six /v1 routes, each as a request that gets past validation. */
const ROUTES: [string, string, unknown?][] = [
  ['POST', '/v1/notifications', { deviceIds: ['nobody'], data: { a: 1 } }],
  ['GET', '/v1/notifications/00000000-0000-0000-0000-000000000000'],
  ['GET', '/v1/devices/nobody'],
  ['GET', '/v1/users/nobody/devices'],
  ['GET', '/v1/presence'],
  ['DELETE', '/v1/devices/nobody/session'],
];

const call = (url: string, i: number, key?: string | null) => {
  const route = ROUTES.at(i % ROUTES.length);
  if (!route) throw new Error('no route');
  const [method, path, json] = route;
  return api(url, path, { method, json, key });
};

/** A request from another loopback address (127.0.0.2), to show limits are per client address. */
function fromOtherAddress(url: string, path: string, key: string): Promise<number> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: '127.0.0.2', headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function expectTooMany(res: Response, message: RegExp): Promise<void> {
  expect(res.status).toBe(429);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  const body = (await res.json()) as Json;
  expect(Object.keys(body).sort()).toEqual(['error', 'message', 'statusCode']);
  expect(body).toEqual({ statusCode: 429, error: 'Too Many Requests', message: expect.stringMatching(message) });
}

describe('REST rate limits (real app, real Redis)', () => {
  const redis = new Redis(testRedisUrl());
  const prefixes: string[] = [];
  const apps: TestApp[] = [];
  const start = async (env: Record<string, string>, clock: FakeClock, prefix: string) => {
    const app = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, ...env }, clock);
    apps.push(app);
    return app;
  };
  const freshPrefix = () => {
    const prefix = uniquePrefix('rest-limits');
    prefixes.push(prefix);
    return prefix;
  };

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('counts per API key across all routes: of 300 requests over 6 routes with API_RATE_LIMIT=50, 50 pass', async () => {
    const gw = await start({ API_RATE_LIMIT: '50', API_RATE_WINDOW_MS: '60000' }, new FakeClock(WINDOW_START), freshPrefix());
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => call(gw.url, batch * 30 + i)));
      for (const res of answers) {
        statuses.push(res.status);
        if (res.status === 429) refused = res;
        else await res.body?.cancel();
      }
    }
    expect(statuses.filter((s) => s !== 429)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(250);
    await expectTooMany(refused!, /^rate limit of 50 requests per 60000 ms for this API key exceeded$/);
    // Frozen clock: this window's 50 must slide out by one fiftieth into the next: 60 s + 1.2 s.
    expect(Number(refused!.headers.get('retry-after'))).toBe(62);
    expect((await fetch(`${gw.url}/health/ready`)).status).toBe(200); // health is not limited
  });

  it('shares one budget between two instances on the same Redis', async () => {
    const prefix = freshPrefix();
    const clock = new FakeClock(WINDOW_START);
    const env = { API_RATE_LIMIT: '20', API_RATE_WINDOW_MS: '60000', API_AUTH_FAILURES_PER_MINUTE: '4' };
    const [a, b] = [await start(env, clock, prefix), await start(env, clock, prefix)];
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => call(i % 2 ? a.url : b.url, i).then((r) => r.status)));
    expect(statuses.filter((s) => s !== 429)).toHaveLength(20);
    // Failed authentications are shared too: 4 on one instance block the address on the other.
    for (let i = 0; i < 4; i++) expect((await call(a.url, 4, WRONG_KEY)).status).toBe(401);
    await expectTooMany(await call(b.url, 4, WRONG_KEY), /failed authentications/);
  });

  it('limits failed authentications per client address; a blocked address gets 429 even with a right key', async () => {
    const clock = new FakeClock(WINDOW_START);
    const gw = await start({ API_AUTH_FAILURES_PER_MINUTE: '5', API_RATE_LIMIT: '1000' }, clock, freshPrefix());
    const failures = [];
    for (let i = 0; i < 5; i++) failures.push((await call(gw.url, i, i % 2 ? null : WRONG_KEY)).status);
    expect(failures).toEqual([401, 401, 401, 401, 401]); // a missing key counts like a wrong one
    await expectTooMany(await call(gw.url, 0, WRONG_KEY), /^too many failed authentications from this address \(at most 5 per 60000 ms\)$/);
    // While blocked, the answer does not depend on the key: nothing is learned by guessing.
    await expectTooMany(await call(gw.url, 4, TEST_API_KEY), /failed authentications/);
    await expectTooMany(await call(gw.url, 4, null), /failed authentications/);
    // Other addresses are not affected.
    expect(await fromOtherAddress(gw.url, '/v1/presence', TEST_API_KEY)).toBe(200);
    expect(await fromOtherAddress(gw.url, '/v1/presence', WRONG_KEY)).toBe(401);
    // Once the failures have slid out of the window, the address is served again.
    clock.advance(2 * 60_000);
    expect((await call(gw.url, 4)).status).toBe(200);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^push_gateway_rate_limited_total\{limit="client_address"\} 3$/m);
  });

  it('counts the client behind a trusted proxy (TRUST_PROXY), an IPv6 client per /64', async () => {
    const gw = await start({ API_AUTH_FAILURES_PER_MINUTE: '2', TRUST_PROXY: '1' }, new FakeClock(WINDOW_START), freshPrefix());
    const from = (client: string, key: string | null = WRONG_KEY) => api(gw.url, '/v1/presence', { key, headers: { 'x-forwarded-for': client } });
    for (const client of ['2001:db8:0:1::1', '2001:db8:0:1::2']) expect((await from(client)).status).toBe(401);
    await expectTooMany(await from('2001:db8:0:1::ffff', TEST_API_KEY), /failed authentications/); // same /64
    expect((await from('2001:db8:0:2::1', TEST_API_KEY)).status).toBe(200); // another /64
    expect((await from('203.0.113.7', TEST_API_KEY)).status).toBe(200);
    expect((await from('203.0.113.7')).status).toBe(401);
  });

  it('POST to device ids: on one Redis the rate check runs in the publish script; refused, nothing is written', async () => {
    const prefix = freshPrefix();
    const clock = new FakeClock(WINDOW_START);
    const gw = await start({ API_RATE_LIMIT: '3', API_RATE_WINDOW_MS: '60000', API_AUTH_FAILURES_PER_MINUTE: '2' }, clock, prefix);
    const post = (json: unknown, key?: string) => api(gw.url, '/v1/notifications', { method: 'POST', json, key });
    const to = (deviceId: string) => ({ deviceIds: [deviceId], data: { n: 1 }, ttl: 600 });
    const redisOfRun = testRedis();
    const inbox = deviceKey(prefix, 'inbox', 'fold-a');
    try {
      await redisOfRun.zcard(inbox); // connected: a Cluster client knows its masters (MONITOR on each)
      // Three admitted: one script call each on one Redis (the rate check and the publish); on a
      // Cluster three each (the address's block and the key's count are in two partitions, sent together).
      const admitted = await redisCommandsDuring(redisOfRun, prefix, async () => {
        for (let i = 0; i < 3; i++) expect((await post(to('fold-a'))).status).toBe(202);
      });
      // The request's own scripts: those on a rate-limit key or a notification's. Background jobs on
      // the same prefix may land in the window (on a Cluster a floor-advance round is 1,024 calls).
      const ofRequests = (commands: string[][]) => commands.filter(([c, , , key]) => c === 'evalsha' && /:(ratelimit|notif):/.test(key ?? ''));
      expect(ofRequests(admitted)).toHaveLength(testClusterNodes() ? 9 : 3);
      expect(await redisOfRun.zcard(inbox)).toBe(3);
      // Over the limit: 429, and the refused publish wrote nothing (no inbox, no notification).
      const refused = await redisCommandsDuring(redisOfRun, prefix, async () => {
        await expectTooMany(await post(to('fold-a')), /for this API key exceeded/);
        await expectTooMany(await post(to('fold-b')), /for this API key exceeded/);
      });
      // Commands the scripts ran (MONITOR lists them after each EVALSHA): none wrote a notification or
      // an inbox. Reads are left out: background jobs on the same prefix may land in the window (the
      // deadline sweeper's peek at each partition's due-time index is a ZRANGE, 1,024 of them on a Cluster).
      const reads = new Set(['zrange', 'zrangebyscore', 'zcard', 'zcount', 'zscore', 'hget', 'hmget', 'hgetall', 'hexists', 'exists', 'get', 'mget', 'pttl', 'ttl', 'type', 'scan', 'xrange', 'xrevrange']);
      expect(refused.filter(([c, key]) => c !== 'evalsha' && !reads.has(c!) && /:(notif|inbox):/.test(key ?? ''))).toEqual([]);
      expect(await redisOfRun.zcard(inbox)).toBe(3);
      expect(await redisOfRun.exists(deviceKey(prefix, 'inbox', 'fold-b'))).toBe(0);
      // A body that would be refused as invalid is refused for the limit first, as on every route.
      await expectTooMany(await post({ deviceIds: [], data: 'not an object' }), /for this API key exceeded/);

      // The next window: the budget is the same for publishes that fold and those that do not.
      clock.advance(2 * 60_000);
      expect((await post(to('fold-a'))).status).toBe(202);
      expect((await post({ userIds: ['fold-user'], data: {}, ttl: 600 })).status).toBe(202); // looks up the user first
      expect((await post({ ...to('fold-a'), title: 'x' }, undefined)).status).toBe(202);
      await expectTooMany(await post(to('fold-a')), /for this API key exceeded/);
      expect(await redisOfRun.zcard(inbox)).toBe(5);

      // An address blocked for failed authentications: a right key and a valid body get 429, nothing written.
      clock.advance(2 * 60_000);
      for (let i = 0; i < 2; i++) expect((await post(to('fold-a'), WRONG_KEY)).status).toBe(401);
      await expectTooMany(await post(to('fold-a')), /failed authentications/);
      expect(await redisOfRun.zcard(inbox)).toBe(5);
      expect(await metric(gw.url, 'push_gateway_rate_limited_total{limit="client_address"}')).toBe(1);
      expect(await metric(gw.url, 'push_gateway_rate_limited_total{limit="api_key"}')).toBe(4);
    } finally {
      redisOfRun.disconnect();
    }
  }, 90_000); // MONITOR on each master: its stream ran tens of seconds behind under CI's load

  it('POST to user ids: on one Redis the rate check and the user\'s devices are in the publish script; a user with more devices than one call takes is counted once', async () => {
    const prefix = freshPrefix();
    const clock = new FakeClock(WINDOW_START);
    const gw = await start({ API_RATE_LIMIT: '3', API_RATE_WINDOW_MS: '60000' }, clock, prefix);
    const post = (json: unknown) => api(gw.url, '/v1/notifications', { method: 'POST', json });
    // Devices of the users, recorded by the app's own presence store (no sockets: they count as online, none receives).
    const presence = gw.app.get(PresenceStore);
    const session = (deviceId: string, userId: string) =>
      presence.connect({ deviceId, sessionId: `s-${deviceId}`, userId, instanceId: gw.config.instanceId, now: clock.now(), interval: 60_000, ttl: 600_000 });
    for (const d of ['small-1', 'small-2']) await session(d, 'small-user');
    for (let i = 0; i < 201; i += 67) await Promise.all(Array.from({ length: Math.min(67, 201 - i) }, (_, j) => session(`big-${i + j}`, 'big-user')));
    const redisOfRun = testRedis();
    try {
      await redisOfRun.zcard(`${prefix}x`); // connected: a Cluster client knows its masters (MONITOR on each)
      let answer: Json = {};
      const seen = await redisCommandsDuring(redisOfRun, prefix, async () => {
        const res = await post({ userIds: ['small-user'], data: { n: 1 }, ttl: 600 });
        expect(res.status).toBe(202);
        answer = (await res.json()) as Json;
      });
      expect(answer).toMatchObject({ online: 2, queued: 0 });
      // One Redis: one script for the whole POST (was three: the rate check, the lookup, the publish).
      if (!testClusterNodes()) expect(seen.filter(([c]) => c === 'evalsha')).toHaveLength(1);
      // 201 devices, more than one call takes: the folded call counts the hit and writes nothing,
      // then the lookup and the publish, without counting again.
      const big = await post({ userIds: ['big-user'], data: { n: 2 }, ttl: 600 });
      expect(big.status).toBe(202);
      expect(await big.json()).toMatchObject({ online: 201, queued: 0 });
      expect((await post({ userIds: ['small-user'], data: { n: 3 } })).status).toBe(202); // the third of 3
      await expectTooMany(await post({ userIds: ['small-user'], data: { n: 4 } }), /for this API key exceeded/);
      expect(await redisOfRun.zcard(deviceKey(prefix, 'inbox', 'small-1'))).toBe(2);
      expect(await redisOfRun.zcard(deviceKey(prefix, 'inbox', 'big-200'))).toBe(1);
    } finally {
      redisOfRun.disconnect();
    }
  }, 90_000);

  it('never gives more than the limit of 401s to one address, however many race', async () => {
    const gw = await start({ API_AUTH_FAILURES_PER_MINUTE: '10' }, new FakeClock(WINDOW_START), freshPrefix());
    const statuses = await Promise.all(Array.from({ length: 60 }, (_, i) => call(gw.url, i, WRONG_KEY).then((r) => r.status)));
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(50);
  });
});

describe('REST rate limits on the embedded store (no Redis)', () => {
  let gw: TestApp;
  const clock = new FakeClock(WINDOW_START);
  beforeAll(async () => {
    gw = await startTestApp({ API_RATE_LIMIT: '5', API_RATE_WINDOW_MS: '60000', API_AUTH_FAILURES_PER_MINUTE: '3' }, clock);
  });
  afterAll(() => gw.close());

  it('counts per key across routes and failed authentications per address, in process', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await call(gw.url, i)).status);
    expect(statuses.filter((s) => s !== 429)).toHaveLength(5);
    for (let i = 0; i < 3; i++) expect((await call(gw.url, i, WRONG_KEY)).status).toBe(401);
    await expectTooMany(await call(gw.url, 0, WRONG_KEY), /failed authentications/);
  });
});
