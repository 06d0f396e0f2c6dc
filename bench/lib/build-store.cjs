// Shared by the scripts that drive a built store directly (bench/connect-redis-cost.cjs,
// bench/user-push-redis-cost.cjs; bench/publish-redis-cost.cjs for dropKeys): their arguments `[build dir (default dist)] [count] [--keep]`,
// the build's modules, and a client on the Redis at REDIS_URL (default 127.0.0.1:6379).
'use strict';
const { resolve } = require('node:path');

/** Reads `[build dir] [count] [--keep]`; `at(module)` requires a module of that build. */
function buildArgs(argv, defaultCount) {
  const keep = argv.includes('--keep');
  const [dirArg, count] = argv.filter((a) => a !== '--keep');
  const dir = resolve(dirArg ?? resolve(__dirname, '../../dist'));
  return { keep, count: Number(count ?? defaultCount), at: (m) => require(resolve(dir, m)) };
}

/** The build's own Redis client, connected (commandTimeoutMs: how long a command may wait). */
async function connectClient(at, commandTimeoutMs) {
  const { createClient } = at('redis/redis-connection');
  const redis = createClient({ mode: 'url', url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }, commandTimeoutMs, true);
  await redis.connect();
  return redis;
}

/** Deletes every key under `prefix`. */
async function dropKeys(redis, prefix) {
  for await (const found of redis.scanStream({ match: `${prefix}*`, count: 1000 })) if (found.length) await redis.del(...found);
}

module.exports = { buildArgs, connectClient, dropKeys };
