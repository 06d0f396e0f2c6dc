import fc from 'fast-check';
import Redis from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import { Socket } from 'socket.io-client';
import { findJsonProblem } from '../src/common/json-limits';
import { api, connectDevice, nextEvent, startTestApp, TestApp } from './support/app';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/** Keys that name Object.prototype members or mean something to JavaScript; drawn often. */
const SPECIAL_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__lookupGetter__',
  'toJSON',
  'then',
  'length',
  '0',
  '',
];
const key = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...SPECIAL_KEYS) }, { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) });

/**
 * JSON text, built as text: what is posted is the reference (JSON.parse of it), so nothing a JS
 * object cannot hold (a `__proto__` key, duplicate keys, lone surrogates) is lost before the
 * gateway sees it. Numbers are JSON.stringify's (so never `-0`, which JSON cannot keep apart).
 */
const tree = fc.letrec<{ value: string; leaf: string; array: string; object: string }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 30 }, tie('leaf'), tie('array'), tie('object')),
  leaf: fc.oneof(
    fc.constantFrom('null', 'true', 'false'),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
    fc.integer().map(String),
    fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }).map(String),
    fc.string({ unit: 'binary', maxLength: 12 }).map((s) => JSON.stringify(s)),
  ),
  array: fc.array(tie('value'), { maxLength: 5 }).map((items) => `[${items.join(',')}]`),
  object: fc
    .array(fc.tuple(key, tie('value')), { maxLength: 6 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
}));

/** A chain of 1-32 levels through special keys and arrays (`null` steps): the depth limit's edge. */
const chain = fc
  .integer({ min: 0, max: 31 })
  .chain((length) => fc.array(fc.option(key, { freq: 3 }), { minLength: length, maxLength: length }))
  .map((steps) => {
    let text = '{"leaf":true}';
    for (const step of [...steps].reverse()) text = step === null ? `[${text}]` : `{${JSON.stringify(step)}:${text}}`;
    return text.startsWith('[') ? `{"root":${text}}` : text;
  });

const dataText = fc.oneof({ weight: 4, arbitrary: tree.object }, { weight: 1, arbitrary: chain }).filter((text) => !findJsonProblem(JSON.parse(text), 32));

/** Notifications by id as a device receives (and acks) them, awaited with a deadline. */
class Inbox {
  private readonly got = new Map<string, Json>();
  private readonly waiting = new Map<string, (n: Json) => void>();

  constructor(socket: Socket) {
    socket.on('notification', (n: Json, ack: () => void) => {
      ack();
      const waiter = this.waiting.get(n.id);
      if (waiter) {
        this.waiting.delete(n.id);
        waiter(n);
      } else this.got.set(n.id, n);
    });
  }

  next(id: string, timeoutMs = 5_000): Promise<Json> {
    const already = this.got.get(id);
    if (already) {
      this.got.delete(id);
      return Promise.resolve(already);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`notification ${id} did not arrive within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(id, (n) => {
        clearTimeout(timer);
        resolve(n);
      });
    });
  }
}

describe('data round-trips exactly (property-based: REST in, real socket out)', () => {
  const prefix = uniquePrefix('roundtrip');
  const redis = new Redis(testRedisUrl());
  let gw: TestApp;
  const sockets: Socket[] = [];
  const prototypeBefore = Object.getOwnPropertyDescriptors(Object.prototype);

  const connect = async (deviceId: string) => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'user-pbt', deviceId }));
    sockets.push(socket);
    const inbox = new Inbox(socket);
    await nextEvent(socket, 'ready');
    return inbox;
  };
  const post = async (deviceId: string, text: string, ttl = 0): Promise<string> => {
    const res = await api(gw.url, '/v1/notifications', {
      method: 'POST',
      body: `{"deviceIds":[${JSON.stringify(deviceId)}],"ttl":${ttl},"data":${text}}`,
      headers: { 'content-type': 'application/json' },
    });
    const answer = (await res.json()) as Json;
    if (res.status !== 202) throw new Error(`${res.status} ${JSON.stringify(answer)} for ${text}`);
    return answer.id as string;
  };

  beforeAll(async () => {
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, MAX_PAYLOAD_BYTES: '1048576', API_RATE_LIMIT: '10000000' });
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
  afterAll(async () => {
    await gw.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  // Ten posts at a time: each value is still checked on its own, and the suite takes far less time.
  it('delivers 1,400 generated objects to an online device deep-equal to what was posted', async () => {
    const inbox = await connect('pbt-online');
    await fc.assert(
      fc.asyncProperty(fc.array(dataText, { minLength: 10, maxLength: 10 }), async (texts) => {
        await Promise.all(
          texts.map(async (text) => {
            const { data } = await inbox.next(await post('pbt-online', text));
            expect(isDeepStrictEqual(data, JSON.parse(text))).toBe(true);
          }),
        );
      }),
      { numRuns: 140 },
    );
  }, 60_000);

  it('delivers 600 more through the Redis inbox (queued while offline, sent on connect) deep-equal', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(dataText, { minLength: 30, maxLength: 30 }), async (texts) => {
        const deviceId = `pbt-stored-${run++}`;
        const posted = await Promise.all(texts.map(async (text) => ({ text, id: await post(deviceId, text, 600) })));
        const inbox = await connect(deviceId);
        await Promise.all(
          posted.map(async ({ text, id }) => {
            const { data } = await inbox.next(id);
            expect(isDeepStrictEqual(data, JSON.parse(text))).toBe(true);
          }),
        );
      }),
      { numRuns: 20 },
    );
  }, 60_000);

  it('left Object.prototype alone, and the gateway still answers', async () => {
    const now = Object.getOwnPropertyDescriptors(Object.prototype);
    expect(Object.keys(now).sort()).toEqual(Object.keys(prototypeBefore).sort());
    for (const [name, was] of Object.entries(prototypeBefore)) {
      const is = now[name];
      expect([name, is?.value, is?.get, is?.set]).toEqual([name, was.value, was.get, was.set]);
    }
    const probe: Json = {};
    const inherited: string[] = [];
    for (const name in probe) inherited.push(name);
    expect(inherited).toEqual([]);
    for (const name of ['polluted', 'leaf', 'root', 'x']) expect(probe[name]).toBeUndefined();
    expect((await fetch(`${gw.url}/health/ready`)).status).toBe(200);
    const inbox = await connect('pbt-after');
    const id = await post('pbt-after', '{"still":"working"}');
    expect((await inbox.next(id)).data).toEqual({ still: 'working' });
  });
});
