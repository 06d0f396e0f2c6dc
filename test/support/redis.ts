import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';

export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the tests through jest (global-setup finds Redis)');
  return url;
}

/** A key prefix of its own per test file, so suites can share one Redis without seeing each other. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Keys under `prefix` that Redis would keep forever (no TTL), except the named bounded indexes. */
export async function keysWithoutTtl(redis: Redis, prefix: string, except: string[] = []): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    for (const key of keys) {
      if (except.includes(key.slice(prefix.length))) continue;
      if ((await redis.pttl(key)) === -1) count++;
    }
    cursor = next;
  } while (cursor !== '0');
  return count;
}
