import Redis from 'ioredis';
import { api, startTestApp, TestApp } from './support/app';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';

type Json = Record<string, unknown>;

/**
 * POST /v1/notifications is answered in front of Express (src/http/fast-publish.ts) when its path
 * is spelled exactly and its body is plain JSON; other spellings of the same route (a trailing
 * slash, another case) go through Express and Nest's router as before. Both must answer every
 * request the same way, headers included, on both stores.
 */
describe.each([
  ['Redis', true],
  ['embedded', false],
])('POST /v1/notifications in front of the router answers as the Nest route does (%s store)', (_name, withRedis) => {
  const prefix = uniquePrefix('fast-publish');
  const redis = new Redis(testRedisUrl());
  let gw: TestApp;
  const FAST = '/v1/notifications';
  const SLASH = '/v1/notifications/';
  const ROUTED = [SLASH, '/V1/Notifications'];

  beforeAll(async () => {
    gw = await startTestApp(withRedis ? { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, API_RATE_LIMIT: '100000' } : { API_RATE_LIMIT: '100000' });
  });
  afterAll(async () => {
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  /** Status, the headers a client reads, and the body (ids masked) of one answer. */
  const answer = async (res: Response) => {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: compared as text
    }
    if (body && typeof body === 'object' && 'id' in body) body = { ...(body as Json), id: typeof (body as Json).id };
    // Every header but those that differ between any two answers (the date; an ETag of a body with another id).
    const headers = [...res.headers].filter(([h]) => h !== 'date' && h !== 'etag');
    return { status: res.status, headers, body };
  };

  const cases: [string, RequestInit & { json?: unknown; key?: string | null }][] = [
    ['accepted', { method: 'POST', json: { deviceIds: ['fast-dev-1'], data: { n: 1 } } }],
    ['accepted, to a user and with a ttl', { method: 'POST', json: { userIds: ['fast-user'], data: { n: 2 }, ttlSeconds: 60 } }],
    ['no API key', { method: 'POST', json: { deviceIds: ['fast-dev-1'], data: {} }, key: null }],
    ['a wrong API key', { method: 'POST', json: { deviceIds: ['fast-dev-1'], data: {} }, key: 'not-a-key' }],
    ['not JSON', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } }],
    ['malformed JSON', { method: 'POST', body: '{"deviceIds":', headers: { 'content-type': 'application/json' } }],
    ['no target', { method: 'POST', json: { data: { n: 1 } } }],
    ['two targets and an unknown field', { method: 'POST', json: { deviceIds: ['a'], topic: 'x', data: {}, extra: 1 } }],
    ['not an object', { method: 'POST', json: [1, 2, 3] }],
    ['a __proto__ key in data', { method: 'POST', body: '{"deviceIds":["fast-dev-1"],"data":{"__proto__":{"x":1}}}', headers: { 'content-type': 'application/json' } }],
    // Bodies the front path hands to Express's JSON parser (replayed from the bytes it read).
    ['a byte order mark before the JSON', { method: 'POST', body: '\ufeff{"deviceIds":["fast-dev-1"],"data":{"n":5}}', headers: { 'content-type': 'application/json' } }],
    ['white space before the JSON', { method: 'POST', body: ' \n{"deviceIds":["fast-dev-1"],"data":{"n":6}}', headers: { 'content-type': 'application/json' } }],
    ['not JSON at all', { method: 'POST', body: 'x{}', headers: { 'content-type': 'application/json' } }],
    ['a JSON string', { method: 'POST', body: '"text"', headers: { 'content-type': 'application/json' } }],
    ['a charset', { method: 'POST', body: '{"deviceIds":["fast-dev-1"],"data":{"n":7}}', headers: { 'content-type': 'application/json; charset=utf-8' } }],
    // Requests the front path leaves to Express.
    ['another charset', { method: 'POST', body: '{"deviceIds":["fast-dev-1"],"data":{"n":8}}', headers: { 'content-type': 'application/json; charset=latin1' } }],
    ['from a browser', { method: 'POST', json: { deviceIds: ['fast-dev-1'], data: { n: 9 } }, headers: { origin: 'https://app.example' } }],
    ['an empty body', { method: 'POST', body: '', headers: { 'content-type': 'application/json' } }],
    ['a body over 256 KiB', { method: 'POST', body: JSON.stringify({ deviceIds: ['fast-dev-1'], data: { pad: 'x'.repeat(270_000) } }), headers: { 'content-type': 'application/json' } }],
  ];

  it.each(cases)('%s', async (_label, init) => {
    const fast = await answer(await api(gw.url, FAST, init));
    for (const path of ROUTED) expect({ path, ...(await answer(await api(gw.url, path, init))) }).toEqual({ path, ...fast });
  });

  it('answers the exact path without Express, and leaves every other request to it', async () => {
    const express = gw.app.getHttpAdapter().getInstance() as { handle: (...args: unknown[]) => unknown };
    const handle = jest.spyOn(express, 'handle');
    try {
      const json = { deviceIds: ['fast-dev-3'], data: { n: 10 } };
      expect((await api(gw.url, FAST, { method: 'POST', json })).status).toBe(202);
      expect((await api(gw.url, FAST, { method: 'POST', body: 'x{}', headers: { 'content-type': 'application/json' } })).status).toBe(400);
      expect(handle).not.toHaveBeenCalled();
      expect((await api(gw.url, SLASH, { method: 'POST', json })).status).toBe(202);
      expect((await api(gw.url, FAST, { method: 'POST', json, headers: { origin: 'https://app.example' } })).status).toBe(202);
      expect((await api(gw.url, `${FAST}?x=1`, { method: 'POST', json })).status).toBe(202);
      expect(handle).toHaveBeenCalledTimes(3);
    } finally {
      handle.mockRestore();
    }
  });

  it('an Idempotency-Key used on one path is honoured on the other', async () => {
    const json = { deviceIds: ['fast-dev-2'], data: { n: 3 } };
    const headers = { 'idempotency-key': `fast-${withRedis ? 'r' : 'e'}-1` };
    const first = await api(gw.url, FAST, { method: 'POST', json, headers });
    expect(first.status).toBe(202);
    const id = ((await first.json()) as Json).id;
    for (const path of [...ROUTED, FAST]) {
      const again = await api(gw.url, path, { method: 'POST', json, headers });
      expect({ path, status: again.status, id: ((await again.json()) as Json).id }).toEqual({ path, status: 202, id });
    }
    const other = await api(gw.url, SLASH, { method: 'POST', json: { ...json, data: { n: 4 } }, headers });
    const otherFast = await api(gw.url, FAST, { method: 'POST', json: { ...json, data: { n: 4 } }, headers });
    expect(await answer(otherFast)).toEqual(await answer(other));
    expect(other.status).toBe(422);
  });
});

describe('POST /v1/notifications in front of the router shares the per-key rate limit with the Nest route', () => {
  let gw: TestApp;
  beforeAll(async () => {
    gw = await startTestApp({ API_RATE_LIMIT: '3', API_RATE_WINDOW_MS: '60000' });
  });
  afterAll(() => gw.close());

  it('counts both paths against one limit and answers the same 429', async () => {
    const init = { method: 'POST', json: { deviceIds: ['limit-dev'], data: {} } };
    expect((await api(gw.url, '/v1/notifications', init)).status).toBe(202);
    expect((await api(gw.url, '/v1/notifications/', init)).status).toBe(202);
    expect((await api(gw.url, '/v1/notifications', init)).status).toBe(202);
    const fast = await api(gw.url, '/v1/notifications', init);
    const routed = await api(gw.url, '/v1/notifications/', init);
    expect(fast.status).toBe(429);
    expect(Number(fast.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await fast.json()).toEqual(await routed.json());
    expect(routed.status).toBe(429);
  });
});
