import type { RedisClient } from '../redis/redis-connection';
import { redisCall } from '../redis/redis-errors';
import { EventLog } from './event-log';
import { EventEnvelope, EventType, compareEventIds } from './event.types';

/**
 * The event log in Redis: the Stream `<prefix>events`, written by the presence scripts (see
 * presence.scripts.ts). Each entry holds `type`, `ts` and `data` (the JSON of the event's data);
 * the entry id is the event id.
 */
export class RedisEventLog extends EventLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly retentionMs: number,
  ) {
    super();
  }

  async read(after: string | undefined, count: number, now: number): Promise<EventEnvelope[]> {
    // The scripts trim by MINID approximately (whole stream nodes); the oldest retained id is exact here.
    const oldest = `${Math.max(0, now - this.retentionMs + 1)}-0`;
    const start = after === undefined || compareEventIds(after, oldest) < 0 ? oldest : `(${after}`;
    const entries = await redisCall(this.redis.xrange(`${this.prefix}events`, start, '+', 'COUNT', count));
    return entries.map(([id, fields]) => toEnvelope(id, fields));
  }
}

/** An envelope from a Stream entry's id and fields. */
export function toEnvelope(id: string, fields: string[]): EventEnvelope {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { id, type: f.type as EventType, timestamp: Number(f.ts), data: JSON.parse(f.data ?? '{}') as Record<string, unknown> };
}
