import { hasRedisServer, pingRedis, startRedisServer } from './find-redis';

/**
 * Finds the Redis the tests run against: REDIS_URL if set, else 127.0.0.1:6379 if it answers,
 * else a redis-server from PATH started on a free port (stopped in global-teardown). Workers read
 * the result from TEST_REDIS_URL.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.REDIS_URL) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL;
    return;
  }
  if (await pingRedis(6379)) {
    process.env.TEST_REDIS_URL = 'redis://127.0.0.1:6379';
    return;
  }
  if (!hasRedisServer()) {
    throw new Error(
      'The tests need Redis 7: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server ' +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) so the tests can start one.',
    );
  }
  const started = await startRedisServer();
  process.env.TEST_REDIS_URL = started.url;
  process.env.TEST_REDIS_PID = String(started.process.pid);
  started.process.unref();
}
