import type { Socket } from 'node:net';
import Redis from 'ioredis';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { loadConfig } from '../config/app-config';
import { createClient, RedisConnection } from './redis-connection';

/** The socket's writes: `_write` for one buffered chunk, `_writev` for several sent together. */
function countWrites(socket: Socket): { single: number; batches: number[] } {
  const seen = { single: 0, batches: [] as number[] };
  const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (chunks: unknown[], cb: unknown) => void };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (...args) => {
    seen.single++;
    write(...args);
  };
  s._writev = (chunks, cb) => {
    seen.batches.push(chunks.length);
    writev(chunks, cb);
  };
  return seen;
}

/** A connected client of createClient on the test Redis, disconnected after `act`. */
async function withClient(batch: boolean, act: (client: Redis) => Promise<void>): Promise<void> {
  const client = createClient({ mode: 'url', url: testRedisUrl() }, 1_000, batch) as Redis;
  try {
    await client.connect();
    await act(client);
  } finally {
    client.disconnect();
  }
}

const socketOf = (client: Redis) => (client as unknown as { stream: Socket }).stream;

describe('createClient and RedisConnection on one Redis (real Redis)', () => {
  const prefix = uniquePrefix('conn');
  const admin = new Redis(testRedisUrl());
  afterAll(async () => {
    await deleteKeys(admin, prefix);
    await admin.quit();
  });

  it('sends the commands of one event-loop turn in one write, and answers each in order', () =>
    withClient(true, async (client) => {
      await client.ping();
      const writes = countWrites(socketOf(client));
      const answers = await Promise.all([
        client.set(`${prefix}a`, '1'),
        client.incr(`${prefix}n`),
        client.incr(`${prefix}n`),
        client.get(`${prefix}a`),
        client.eval('return ARGV[1]', 0, 'lua'),
      ]);
      expect(answers).toEqual(['OK', 1, 2, '1', 'lua']);
      expect(writes).toEqual({ single: 0, batches: [5] });
      // A command of a later turn is a write of its own; the socket is not left corked.
      expect(await client.incr(`${prefix}n`)).toBe(3);
      expect(writes.batches).toEqual([5]);
      expect(writes.single).toBe(1);
    }));

  it('answers a command whose reply arrived while the event loop was busy past its timeout, and times out one Redis did not answer', async () => {
    const client = createClient({ mode: 'url', url: testRedisUrl() }, 50, true) as Redis;
    try {
      await client.connect();
      const answer = client.incr(`${prefix}busy`);
      // The command leaves at the end of this turn; then the loop is busy for 200 ms (a saturated
      // gateway): the reply arrives meanwhile, and the 50 ms timer is due when the loop comes back.
      await new Promise((resolve) => setImmediate(resolve));
      const until = performance.now() + 200;
      while (performance.now() < until);
      expect(await answer).toBe(1);
      // A Redis that does not answer at all (paused by CLIENT PAUSE) still makes the command fail.
      await admin.client('PAUSE', '300', 'ALL');
      await expect(client.incr(`${prefix}busy`)).rejects.toThrow('Command timed out');
    } finally {
      client.disconnect();
    }
  });

  it('still answers after a reconnect (the new socket is corked per turn too)', () =>
    withClient(true, async (client) => {
      const ready = new Promise((resolve) => client.once('ready', resolve));
      socketOf(client).destroy();
      await ready;
      const writes = countWrites(socketOf(client));
      expect(await Promise.all([client.incr(`${prefix}m`), client.incr(`${prefix}m`)])).toEqual([1, 2]);
      expect(writes.batches).toEqual([2]);
    }));

  it('leaves the turn batching off when asked (the subscriber and publisher connections)', () =>
    withClient(false, async (client) => {
      await client.ping();
      const writes = countWrites(socketOf(client));
      expect(await Promise.all([client.incr(`${prefix}k`), client.incr(`${prefix}k`)])).toEqual([1, 2]);
      expect(writes.batches).toEqual([]);
      expect(writes.single).toBe(2);
    }));

  it('answers a heartbeat batch sent early in an event-loop turn that stays busy past its timeout: the heartbeat connection writes at once', async () => {
    // The heartbeat connection's timeout: twice HEARTBEAT_MIN_MS (200 ms here).
    const connection = new RedisConnection(loadConfig({ REDIS_URL: testRedisUrl(), REDIS_COMMAND_TIMEOUT_MS: '50', HEARTBEAT_INTERVAL_MS: '400', HEARTBEAT_MIN_MS: '100' }));
    try {
      await connection.connect();
      const answer = connection.beats!.incr(`${prefix}beats`);
      // The same turn goes on for 400 ms (a saturated gateway reading a backlog of device packets).
      // Corked until the turn's end, the command would leave only then, and its timer, due by then,
      // would fail it before Redis's answer could arrive.
      const until = performance.now() + 400;
      while (performance.now() < until);
      expect(await answer).toBe(1);
    } finally {
      await connection.onApplicationShutdown();
    }
  });
});
