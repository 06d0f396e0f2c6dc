import type { RedisClient } from './redis-connection';

/**
 * The Socket.IO Redis adapters call publish and (un)subscribe, classic or sharded (spublish,
 * ssubscribe, sunsubscribe), without handling a rejected
 * promise; while Redis is down each would become an unhandled rejection and end the process.
 * This view of a client turns those failures into a logged no-op: an emit then reaches local
 * sockets only (the adapter is at-most-once anyway; stored notifications are redelivered), and
 * ioredis re-subscribes by itself once the link is back.
 */
const GUARDED = new Set(['publish', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'spublish', 'ssubscribe', 'sunsubscribe']);

export function forgivingClient(client: RedisClient, onError: (err: Error) => void): RedisClient {
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      // constructor stays as is: the adapter tells Cluster from Redis by constructor.name.
      if (typeof value !== 'function' || property === 'constructor') return value;
      const method = (value as (...a: unknown[]) => unknown).bind(target);
      if (typeof property !== 'string' || !GUARDED.has(property)) return method;
      return (...args: unknown[]) =>
        (method(...args) as Promise<unknown>).catch((err: Error) => {
          onError(err);
          return 0;
        });
    },
  });
}
