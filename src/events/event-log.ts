import { EventEnvelope } from './event.types';

/**
 * The durable log of events for backends. The presence store writes it, in the same atomic step
 * as each change (a Lua script on Redis); this side only reads it. Events are kept
 * EVENT_RETENTION_HOURS, measured on the log ids' time.
 */
export abstract class EventLog {
  /**
   * Up to `count` retained events after the event id `after` (from the oldest retained when
   * undefined), oldest first. Fewer than `count` means the log holds no more yet.
   */
  abstract read(after: string | undefined, count: number, now: number): Promise<EventEnvelope[]>;
}
