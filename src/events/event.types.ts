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
  /** Unique per event and stable: the log entry's id (`<ms>-<n>`, ordered as the log is). */
  id: string;
  type: EventType;
  /** epoch ms of the change, by the clock of the instance that made it */
  timestamp: number;
  data: Record<string, unknown>;
}

/** EVENT_RETENTION_HOURS' default. */
export const DEFAULT_EVENT_RETENTION_MS = 24 * 3_600_000;

/** Log ids: `<ms>-<n>`, compared as numbers, part by part (as Redis Stream ids). */
export const EVENT_ID = /^\d{1,15}-\d{1,15}$/;

export function compareEventIds(a: string, b: string): number {
  const [am, an] = a.split('-').map(Number) as [number, number];
  const [bm, bn] = b.split('-').map(Number) as [number, number];
  return am - bm || an - bn;
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
