import { EventEnvelope } from './event.types';

/** One entry of a partition's stream: its stream id (`<ms>-<n>`) and the event it holds. */
export interface PartitionEntry {
  entry: string;
  event: EventEnvelope;
}

/**
 * The durable log of events for backends. The presence and notification stores write it, in the
 * same atomic step as each change (a Lua script on Redis, one stream per partition); this side
 * only reads it. Events are kept EVENT_RETENTION_HOURS, measured on the log ids' time.
 */
export abstract class EventLog {
  /** How many partition streams the log has (1 but on a Cluster). */
  abstract readonly partitions: number;
  /**
   * Up to `count` retained events after the cursor `after` (from the oldest retained when
   * undefined), in log order. Fewer than `count` means the log holds no more yet that are settled
   * (on a Cluster, events appear here about 1-1.5 s after they are recorded).
   */
  abstract read(after: string | undefined, count: number, now: number): Promise<EventEnvelope[]>;
  /** Up to `count` entries of partition p's stream after its entry `after` (`<ms>-<n>`), in stream order. */
  abstract readPartition(p: number, after: string, count: number): Promise<PartitionEntry[]>;
  /** Partition p's newest entry id, `0-0` when its stream is empty. */
  abstract lastEntry(p: number): Promise<string>;
}
