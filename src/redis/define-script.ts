import type { RedisClient } from './redis-connection';

export type Script = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

/**
 * Registers a Lua script on the connection and returns it as a function of (keys..., args...).
 * ioredis runs it with EVALSHA (one round trip) and falls back to EVAL after a NOSCRIPT, e.g.
 * when Redis restarted and lost its script cache.
 */
export function defineScript(redis: RedisClient, name: string, lua: string, numberOfKeys: number): Script {
  redis.defineCommand(name, { lua, numberOfKeys });
  return (redis as unknown as Record<string, Script>)[name].bind(redis);
}
