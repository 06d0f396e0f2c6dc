import { randomUUID } from 'node:crypto';
import type { KeyLayout } from '../redis/partitions';

/**
 * Notification ids are v4 UUIDs (NOTIFICATION_ID) whose first 10 bits name the partition of the
 * notification's header (docs/design/sharding.md section 4): its status, createdAt and the list
 * of partitions holding its targets. With one partition (a single Redis, Sentinel, embedded) the
 * header is always in partition 0 and the id is an ordinary random UUID.
 */
export function mintNotificationId(layout: KeyLayout, h: number): string {
  const uuid = randomUUID();
  if (layout.partitions === 1) return uuid;
  // 3 hex digits = 12 bits: the partition (10 bits), then 2 of the UUID's own random bits.
  const hex3 = ((h << 2) | (parseInt(uuid[2]!, 16) & 3)).toString(16).padStart(3, '0');
  return hex3 + uuid.slice(3);
}

/**
 * The header partition of a notification id. An id not minted by mintNotificationId (a test's own
 * id) falls in the partition of its name, so publish and status still agree on where it is.
 */
export function headerPartitionOf(layout: KeyLayout, id: string): number {
  if (layout.partitions === 1) return 0;
  return /^[0-9a-f]{3}/.test(id) ? parseInt(id.slice(0, 3), 16) >> 2 : layout.partitionOf(id);
}

/** The partition with the most of these targets (the header goes there, so a one-partition publish is one call). */
export function busiestPartition(layout: KeyLayout, deviceIds: readonly string[]): number {
  if (layout.partitions === 1) return 0;
  let best = -1;
  let count = 0;
  for (const [p, ids] of layout.byPartition(deviceIds, (d) => d)) {
    if (ids.length > count) [best, count] = [p, ids.length];
  }
  return best >= 0 ? best : Math.floor(Math.random() * layout.partitions);
}
