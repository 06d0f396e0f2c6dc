import Redis from 'ioredis';
import { Agent, request } from 'node:http';
import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, waitFor } from './support/app';
import { RunningGateway, startGateway } from './support/gateways';
import { MemoryProbe } from './support/memory-probe';
import { RawDevice } from './support/raw-device';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TEST_API_KEY } from './support/tokens';

const LIMIT = 1_048_576; // SOCKET_MAX_BUFFERED_BYTES (the default)
const COUNT = 20_000;
const DATA = 'x'.repeat(4_000); // a 4 KB notification

/**
 * POSTs `count` notifications to one device, `concurrency` at a time over kept-alive connections;
 * every answer must be a 202. Plain http.request: fetch's per-request objects made this client, not
 * the gateway, the slow side.
 */
async function postMany(url: string, deviceId: string, count: number, concurrency = 16): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const { hostname, port } = new URL(url);
  const post = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({ deviceIds: [deviceId], data: { i, pad: DATA }, ttl: 3_600 });
      const req = request(
        { agent, hostname, port, path: '/v1/notifications', method: 'POST', headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`POST ${i}: ${res.statusCode} ${text}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  const worker = async () => {
    while (next < count) await post(next++);
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
}

/**
 * A socket.io-client device that acks everything, counts distinct notifications and, like a real
 * app, connects again whenever the gateway ends its session: under CI's load this process can
 * itself fall SOCKET_MAX_BUFFERED_BYTES behind for longer than the grace, and the gateway then
 * rightly ends it as a slow consumer; the inbox redelivers what it had not acked.
 */
function readingDevice(url: string, deviceId: string): { socket: Socket; ids: Set<string>; ended: string[]; close(): void } {
  const socket = connectDevice(url, deviceToken({ sub: 'slow-user', deviceId }));
  const ids = new Set<string>();
  const ended: string[] = [];
  let closing = false;
  socket.on('notification', (n: { id: string }, ack: () => void) => {
    ids.add(n.id);
    ack();
  });
  socket.on('session_ended', (e: { reason: string }) => ended.push(e.reason));
  socket.on('disconnect', () => {
    if (!closing) setTimeout(() => socket.connect(), 100);
  });
  return {
    socket,
    ids,
    ended,
    close() {
      closing = true;
      socket.disconnect();
    },
  };
}

/** waitFor with a message that says how far the reader got and why it was ended, if it was. */
async function waitForReader(reader: { ids: Set<string>; ended: string[] }, count: number, timeoutMs: number): Promise<void> {
  await waitFor(() => reader.ids.size === count, timeoutMs).catch(() => {
    throw new Error(`the reader had ${reader.ids.size} of ${count} notifications after ${timeoutMs} ms (sessions ended: ${reader.ended.join(', ') || 'none'})`);
  });
}

describe('slow consumers: a socket that does not read never costs more than SOCKET_MAX_BUFFERED_BYTES', () => {
  const prefix = uniquePrefix('slow');
  const redis = new Redis(testRedisUrl());
  const probe = new MemoryProbe();
  let gw: RunningGateway;
  const metric = async (name: string) =>
    Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${gw.url}/metrics`)).text())?.[1] ?? 0);
  const memory = () => probe.memory(gw.process.child.pid!);

  beforeAll(async () => {
    // Its own process, so the gateway has a core of its own and its memory is its alone.
    gw = await startGateway(
      'slow-gw',
      {
        REDIS_URL: testRedisUrl(),
        REDIS_PREFIX: prefix,
        INBOX_MAX_SIZE: String(COUNT),
        MAX_PAYLOAD_BYTES: '8192',
        API_RATE_LIMIT: '10000000',
        SLOW_CONSUMER_GRACE_MS: '3000',
        HEARTBEAT_INTERVAL_MS: '25000',
        SWEEP_INTERVAL_MS: '1000',
        ...probe.env,
      },
      probe.nodeArgs,
    );
  });
  afterAll(async () => {
    gw.process.child.kill('SIGKILL');
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it(`holds ${COUNT} pushes of 4 KB for a paused client in no more memory than for a reader plus twice the limit, ends it, and a new connection gets all of them`, async () => {
    const reader = readingDevice(gw.url, 'reader');
    await nextEvent(reader.socket, 'ready');
    await postMany(gw.url, 'reader', 1_000); // warm-up: code compiled, pools and buffers grown
    await waitForReader(reader, 1_000, 30_000);

    const beforeReading = await memory();
    await postMany(gw.url, 'reader', COUNT);
    // Minutes, not seconds, under CI's load: 20,000 pushes and acks through one process and this one.
    await waitForReader(reader, 1_000 + COUNT, 180_000);
    const readingGrowth = (await memory()) - beforeReading;
    reader.close();
    // A reader this process could not keep up with was a slow consumer too: count from here.
    const slowBefore = await metric('push_gateway_slow_consumers_total');

    const paused = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'slow-user', deviceId: 'paused' }) });
    paused.pause();
    const beats = setInterval(() => paused.emit('heartbeat', {}), 500); // it keeps heartbeating
    try {
      const beforePaused = await memory();
      await postMany(gw.url, 'paused', COUNT);
      const pausedGrowth = (await memory()) - beforePaused;
      // A collected heap is exact to a few KB; a reader's growth can come out slightly negative,
      // which must not make the bound tighter than the limit itself. The limit counts the bytes a
      // socket holds (its transport's buffer and its sent, unacked notifications); the heap holds
      // each of those notifications twice, as the encoded packet waiting in the transport and as
      // the payload kept for its ack: at most 2 x LIMIT over the reader, whatever COUNT is
      // (measured on a quiet Intel Xeon: 1.70-1.79 MB over a reader's 0.40-0.58 MB for 10k, 20k
      // and 40k pushes alike), where holding the 20,000 pushes themselves would be 80 MB.
      expect(pausedGrowth).toBeLessThanOrEqual(Math.max(readingGrowth, 0) + 2 * LIMIT);
      expect(await metric('push_gateway_socket_full_total')).toBeGreaterThanOrEqual(1); // it really filled up

      // It stayed full past SLOW_CONSUMER_GRACE_MS: ended and offline.
      await waitFor(async () => (await metric('push_gateway_slow_consumers_total')) === slowBefore + 1, 10_000);
      await waitFor(async () => !((await (await api(gw.url, '/v1/devices/paused')).json()) as { online: boolean }).online, 2_000);
    } finally {
      clearInterval(beats);
      paused.close();
    }

    const fresh = readingDevice(gw.url, 'paused');
    await waitForReader(fresh, COUNT, 180_000);
    fresh.close();
  }, 480_000);
});
