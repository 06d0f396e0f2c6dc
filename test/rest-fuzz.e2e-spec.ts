import fc from 'fast-check';
import Redis from 'ioredis';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { startTestApp, TestApp } from './support/app';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { TEST_API_KEY } from './support/tokens';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** What every answer must be: no 5xx, the documented JSON error on a 4xx, nothing naming the framework, no stack. */
function expectWellFormed(answer: Answer, what: string, method = 'GET'): void {
  const context = `${what} -> ${answer.status} ${answer.text.slice(0, 300)}`;
  if (answer.status >= 500) throw new Error(`5xx for ${context}`);
  if (answer.headers['x-powered-by'] !== undefined) throw new Error(`X-Powered-By on ${context}`);
  if (/\n\s+at \S|\.(?:ts|js):\d+:\d+/.test(answer.text)) throw new Error(`stack trace in ${context}`);
  if (answer.status < 400 || method === 'HEAD') return;
  if (!/^application\/json/.test(String(answer.headers['content-type']))) throw new Error(`not JSON: ${context}`);
  const body = JSON.parse(answer.text) as Record<string, unknown>;
  if (body.statusCode !== answer.status || typeof body.error !== 'string' || typeof body.message !== 'string') {
    throw new Error(`not the error shape: ${context}`);
  }
}

// Header values Node's client can send: tab, printable ASCII and Latin-1 (no controls, no DEL).
const headerChar = fc.oneof(fc.constant(9), fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
const junk = (maxLength: number) => fc.string({ unit: headerChar, maxLength });
const id = fc.stringMatching(/^[A-Za-z0-9._:@-]{1,24}$/);

/** Path segments: real ids and UUIDs, names with meaning, any text, and raw percent-encoded bytes. */
const segment = fc.oneof(
  id,
  fc.uuid(),
  fc.constantFrom('seq', '__proto__', 'constructor', 'toString', '%FF', '%00', '%2F', '%2e%2e', '%C0%AF', 'a'.repeat(300), '%20', '*'),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map(encodeURIComponent),
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')),
);

const route = fc.oneof(
  { weight: 5, arbitrary: fc.constant(['POST', '/v1/notifications'] as const) },
  segment.map((s) => ['GET', `/v1/notifications/${s}`] as const),
  segment.map((s) => ['GET', `/v1/devices/${s}`] as const),
  segment.map((s) => ['GET', `/v1/users/${s}/devices`] as const),
  segment.map((s) => ['DELETE', `/v1/devices/${s}/session`] as const),
  fc.constant(['GET', '/v1/presence'] as const),
  fc.constant(['GET', '/v1/ops/stats'] as const),
  fc.tuple(fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD', 'POST', 'DELETE'), fc.constantFrom('/v1/notifications', '/v1/presence', '/v1/ops/stats', '/v1/devices/x', '/v1/nope')),
  fc.tuple(fc.constantFrom('GET', 'POST'), fc.constantFrom('/v1/presence', '/v1/ops/stats', '/v1/notifications')).chain(([m, p]) =>
    fc.string({ unit: 'grapheme-ascii', maxLength: 30 }).map((q) => [m, `${p}?${encodeURI(q)}&__proto__[x]=1&a[b][c]=2`] as const),
  ),
);

/** Values for every field of the body, right and wrong. */
const anyJson = fc.jsonValue({ maxDepth: 3 });
const notificationBody = fc.record(
  {
    deviceIds: fc.oneof(fc.array(id, { minLength: 1, maxLength: 3 }), fc.array(fc.string(), { maxLength: 3 }), anyJson),
    userIds: fc.oneof(fc.array(id, { minLength: 1, maxLength: 3 }), anyJson),
    topic: fc.oneof(fc.stringMatching(/^[a-z.]{1,12}$/), anyJson),
    data: fc.oneof({ weight: 3, arbitrary: fc.dictionary(fc.string(), anyJson) }, anyJson),
    title: fc.oneof(fc.string({ maxLength: 300 }), anyJson),
    body: fc.oneof(fc.string(), anyJson),
    ttl: fc.oneof(fc.integer({ min: -10, max: 3_000_000 }), fc.double(), anyJson),
    collapseKey: fc.oneof(fc.string({ maxLength: 70 }), anyJson),
    constructor: anyJson,
  },
  { requiredKeys: [] },
);

/** Bodies that pass validation, so that requests get past it often enough to reach Redis. */
const validBody = fc.record(
  {
    deviceIds: fc.array(id, { minLength: 1, maxLength: 3 }),
    data: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })),
    title: fc.string({ minLength: 1, maxLength: 20 }),
    ttl: fc.integer({ min: 0, max: 3_600 }),
    collapseKey: fc.stringMatching(/^[a-z]{1,8}$/),
  },
  { requiredKeys: ['deviceIds', 'data'] },
);

const deep = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean())
  .map(([depth, arrays]) => `{"deviceIds":["fz"],"data":${arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`}}`);

const bodyText = fc.oneof(
  { weight: 6, arbitrary: notificationBody.map((b) => JSON.stringify(b)) },
  { weight: 4, arbitrary: validBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: fc.json() },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.json().chain((t) => fc.nat(t.length).map((n) => t.slice(0, n))) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"deviceIds":["fz"],"data":{"n":1e999}}',
      '{"deviceIds":["fz"],"data":{},"ttl":1e999}',
      '{"deviceIds":["fz"],"data":{"__proto__":{"polluted":1}},"__proto__":{"polluted":1}}',
      '{"deviceIds":["fz"],"data":{"s":"\\ud800"}}',
      '{"deviceIds":["fz"],"deviceIds":"dup","data":{}}',
      '\ufeff{"deviceIds":["fz"],"data":{}}',
      '',
      'null',
      '[]',
    ),
  },
);
const body = fc.oneof(
  { weight: 8, arbitrary: bodyText.map((t) => Buffer.from(t)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: bodyText.map((t) => Buffer.from(t, 'utf16le')) },
);

/** Absent (undefined) `absent` times in `absent + present`. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, absent = 1, present = 1) =>
  fc.oneof({ weight: absent, arbitrary: fc.constant(undefined) }, { weight: present, arbitrary });

const headers = fc
  .record({
    authorization: sometimes(
      fc.oneof(
        { weight: 8, arbitrary: fc.constant(`Bearer ${TEST_API_KEY}`) },
        { weight: 1, arbitrary: junk(40).map((j) => `Bearer ${j}`) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(`bearer ${TEST_API_KEY}`, `Bearer ${TEST_API_KEY} extra`, `Bearer  ${TEST_API_KEY}`, 'Bearer', `Basic ${TEST_API_KEY}`, `Bearer ${'k'.repeat(8000)}`),
        },
        { weight: 1, arbitrary: junk(60) },
      ),
      1,
      10,
    ),
    'idempotency-key': sometimes(fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,16}$/) }, junk(20), fc.constant('k'.repeat(300)))),
    'content-type': sometimes(
      fc.oneof(
        { weight: 8, arbitrary: fc.constant('application/json') },
        {
          weight: 4,
          arbitrary: fc.constantFrom(
            'application/json; charset=utf-8',
            'application/json; charset=utf-16',
            'application/json; charset=latin1',
            'application/json; charset=nope',
            'APPLICATION/JSON',
            'application/merge-patch+json',
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/json; charset="',
            ';;;',
            '',
            '*/*',
          ),
        },
        { weight: 1, arbitrary: junk(40) },
      ),
      1,
      6,
    ),
    'content-encoding': sometimes(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'bogus', 'gzip, gzip'), 4),
    accept: sometimes(junk(30)),
    'x-forwarded-for': sometimes(junk(30)),
  })
  .map((head) => Object.fromEntries(Object.entries(head).filter(([, value]) => value !== undefined)) as Record<string, string>);

describe('REST fuzz: no client input gives a 5xx (real app, real Redis)', () => {
  const prefix = uniquePrefix('fuzz');
  const redis = new Redis(testRedisUrl());
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let gw: TestApp;
  let port: number;

  const send = (method: string, path: string, head: Record<string, string>, payload?: Buffer): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, agent, headers: { ...head, ...(payload ? { 'content-length': String(payload.length) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });

  /** Sends raw bytes on a fresh connection and reads the answer until the server closes it. */
  const sendRaw = (raw: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(raw));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const [head = '', ...rest] = text.split('\r\n\r\n');
        const [statusLine = '', ...lines] = head.split('\r\n');
        const headerMap: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headerMap[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        resolve({ status: Number(statusLine.split(' ')[1]), headers: headerMap, text: rest.join('\r\n\r\n') });
      });
    });

  beforeAll(async () => {
    // Rate limits are not under test here: many generated requests carry no key or a wrong one,
    // and after API_AUTH_FAILURES_PER_MINUTE of them loopback would only get 429s.
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, API_RATE_LIMIT: '10000000', API_AUTH_FAILURES_PER_MINUTE: '10000000' });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    agent.destroy();
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('answers 1,500 generated requests over every /v1 route with no 5xx and the JSON error shape on every 4xx', async () => {
    const statuses = new Map<number, number>();
    const requestArb = fc.record({ route, headers, body: fc.option(body, { freq: 4 }), gzip: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: 5, maxLength: 5 }), async (batch) => {
        await Promise.all(
          batch.map(async ({ route: [method, path], headers: head, body: payload, gzip }) => {
            const sent = payload && gzip && head['content-encoding'] === 'gzip' ? gzipSync(payload) : (payload ?? undefined);
            const answer = await send(method, path, head, method === 'GET' || method === 'HEAD' ? undefined : sent);
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            expectWellFormed(answer, `${method} ${path} ${JSON.stringify(head).slice(0, 200)} ${sent?.toString().slice(0, 200) ?? ''}`, method);
          }),
        );
      }),
      { numRuns: 300 },
    );
    // The generators reach past validation: accepted, refused and unknown all occur.
    expect([...statuses.keys()]).toEqual(expect.arrayContaining([200, 202, 400, 401, 404]));
  }, 60_000);

  it('answers requests Node cannot parse with their 4xx in the JSON error shape', async () => {
    const cases: [string, number][] = [
      [`GET /v1/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['GET /v1/presence HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n', 400],
      ['GET /v1/presence HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n', 400],
      ['POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
      ['POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}', 400],
      ['NOT A REQUEST\r\n\r\n', 400],
      ['GET /v1/presence HTTP/9.9\r\nHost: x\r\n\r\n', 400],
    ];
    for (const [raw, status] of cases) {
      const answer = await sendRaw(raw);
      expect({ raw: raw.slice(0, 60), status: answer.status }).toEqual({ raw: raw.slice(0, 60), status });
      expectWellFormed(answer, raw.slice(0, 60));
    }
    // And the server is fine afterwards.
    expect((await send('GET', '/v1/presence', { authorization: `Bearer ${TEST_API_KEY}` })).status).toBe(200);
  });
});
