/**
 * Events for backends (PRODUCT.md "Events for backends"): what the stores record in their event
 * log in the same atomic step as the change, and what GET /v1/events hands out.
 */

/** Every event type of the contract. */
export const EVENT_TYPES = [
  'device.online',
  'device.offline',
  'user.online',
  'user.offline',
  'notification.delivered',
  'notification.expired',
  'notification.unacked',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Why a device went offline, as `device.offline` says. */
export const OFFLINE_REASONS = [
  'client_close',
  'heartbeat_timeout',
  'instance_lost',
  'replaced',
  'kicked',
  'token_expired',
  'slow_consumer',
  'rate_limited',
  'server_shutdown',
] as const;
export type OfflineReason = (typeof OFFLINE_REASONS)[number];

/**
 * Offline reasons whose event waits PRESENCE_EVENT_GRACE_MS (flap suppression): the device may be
 * back at once. A takeover (`replaced`) and the server's own decisions are recorded at once.
 */
export const HELD_OFFLINE_REASONS: readonly OfflineReason[] = ['client_close', 'heartbeat_timeout', 'instance_lost', 'server_shutdown'];

/** What a receiver gets, in the log, the pull API and webhook bodies alike. */
export interface EventEnvelope {
  /** Unique per event and stable: `<ms>-<n>`, or `<ms>-<p>-<n>` on a Cluster (see EVENT_ID); ordered as the log is. */
  id: string;
  type: EventType;
  /** epoch ms of the change, by the clock of the instance that made it */
  timestamp: number;
  data: Record<string, unknown>;
}

/** EVENT_RETENTION_HOURS' default. */
export const DEFAULT_EVENT_RETENTION_MS = 24 * 3_600_000;

/**
 * Event ids (and pull cursors, which have the same grammar). With one partition (a single Redis,
 * Sentinel, the embedded store) an id is its Stream entry id `<ms>-<n>`; on a Cluster it is
 * `<ms>-<p>-<n>`: entry `<ms>-<n>` of partition p's stream. Log order is (ms, p, n).
 */
export const EVENT_ID = /^\d{1,15}(-\d{1,4})?-\d{1,15}$/;

/** A position in log order: after every event up to (ms, p, n). */
export interface EventPosition {
  ms: number;
  p: number;
  n: number;
}

/** The partition number that means "after every partition at that ms" (ids never carry it). */
export const AFTER_ALL_PARTITIONS = 1024;

/**
 * The position of an id or cursor. A two-part id `<ms>-<n>` is partition 0's entry where there is
 * one partition; on a partitioned layout (`partitions > 1`) it is an old cursor from before
 * partitioning and reads as "after everything before ms" (`<ms-1>-1024-0`: at-least-once).
 */
export function eventPosition(id: string, partitions = 1): EventPosition {
  const parts = id.split('-').map(Number);
  if (parts.length === 3) return { ms: parts[0]!, p: parts[1]!, n: parts[2]! };
  if (partitions > 1) return { ms: parts[0]! - 1, p: AFTER_ALL_PARTITIONS, n: 0 };
  return { ms: parts[0]!, p: 0, n: parts[1]! };
}

/** The envelope id of partition p's stream entry `entry` (`<ms>-<n>`). */
export function eventIdOf(entry: string, p: number, partitions: number): string {
  if (partitions === 1) return entry;
  const dash = entry.indexOf('-');
  return `${entry.slice(0, dash)}-${p}-${entry.slice(dash + 1)}`;
}

export function comparePositions(a: EventPosition, b: EventPosition): number {
  return a.ms - b.ms || a.p - b.p || a.n - b.n;
}

/** Compares two ids in log order; a two-part id counts as partition 0's. */
export function compareEventIds(a: string, b: string): number {
  return comparePositions(eventPosition(a), eventPosition(b));
}

export function eventIdTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** The `<prefix>.*` patterns that `types` (GET /v1/events) and WEBHOOK_EVENTS accept, one per type family. */
export const EVENT_TYPE_PREFIXES = [...new Set(EVENT_TYPES.map((t) => t.slice(0, t.indexOf('.'))))];

/** The patterns of a list that are neither an event type nor a `<prefix>.*` pattern. */
export function unknownTypePatterns(patterns: readonly string[]): string[] {
  return patterns.filter((p) => !(EVENT_TYPES as readonly string[]).includes(p) && !EVENT_TYPE_PREFIXES.some((prefix) => p === `${prefix}.*`));
}

/** Whether a type matches one of the (valid) patterns: an exact name or `<prefix>.*`. */
export function typeMatcher(patterns: readonly string[]): (type: string) => boolean {
  return (type) => patterns.some((p) => p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}
