/** What a new session writes into the presence store. All times are epoch ms. */
export interface SessionStart {
  deviceId: string;
  userId: string;
  sessionId: string;
  instanceId: string;
  platform?: string;
  network?: string;
  now: number;
  interval: number;
  ttl: number;
}

export type AppState = 'foreground' | 'background';

export interface HeartbeatUpdate {
  deviceId: string;
  sessionId: string;
  /** The instance holding the session (the one handling its heartbeats). */
  instanceId: string;
  now: number;
  /**
   * How late the instance may be in handling heartbeats (its own queueing, ms): a session that
   * expired less than this long ago, and that it has not swept, is still live. Heartbeats a store
   * sends together share the largest grace among them (one instance's, a few ms apart).
   */
  grace?: number;
  interval: number;
  ttl: number;
  appState?: AppState;
  network?: string;
  /** Record one stable-interval sample (this bucket) for `network`, in the same write. */
  sampleBucket?: number;
  /**
   * What the session's record already holds, as far as its holder knows: its connect and the
   * heartbeats sent before this one wrote these (Redis applies a session's heartbeats in the order
   * they were sent, acknowledged or not yet). Given (recordedInterval set), a store writes only the
   * fields that differ from them, without reading them first; absent (not known, e.g. after a
   * heartbeat whose outcome is unknown), it writes every field given.
   */
  recordedInterval?: number;
  recordedAppState?: AppState;
  recordedNetwork?: string;
  /**
   * The record's expiresAt and the score of its expiry-index entry, as the holder knows them (the
   * same rule: written by its connect and the heartbeats sent before this one). Given, and the
   * session not expired by them, a store need not read the record to check the session first.
   */
  recordedExpiresAt?: number;
  recordedIndexAt?: number;
}

/**
 * Whether the heartbeat's holder knows its session's record to be live (expiresAt after `now`) and
 * where its index entry stands: then a store can extend the session without reading its record.
 */
export function knownLive(u: HeartbeatUpdate): boolean {
  return u.recordedIndexAt !== undefined && u.recordedExpiresAt !== undefined && u.recordedExpiresAt > u.now;
}

/**
 * The score a heartbeat gives its session's expiry-index entry (in Redis: `presence:expiry` and the
 * record's `ix`), or undefined when it leaves the entry as it is. The entry only says when to look
 * at the session (the sweep reads expiresAt, and re-scores one that is not over), never later than
 * expiresAt. One due more than 1.25 intervals from now does not come due before the next beat, so
 * it stays: with a TTL of 2.5 intervals, a device on time rewrites it at every other beat, and one
 * that goes silent is looked at up to an interval early, once. Where the holder does not know the
 * entry, or its session's record is not known to be live (the sweep may have re-scored the entry
 * past expiresAt), the entry is rewritten. SessionService keeps the result (indexAfter).
 */
export function heartbeatIndexScore(u: HeartbeatUpdate): number | undefined {
  const expiresAt = u.now + u.ttl;
  if (!knownLive(u)) return expiresAt;
  const at = u.recordedIndexAt!;
  return at > expiresAt || at <= Math.floor(u.now + 1.25 * u.interval) ? expiresAt : undefined;
}

/**
 * The score the session's index entry holds once this heartbeat lands (the one it moves the entry
 * to, or the one it leaves): what the holder passes as recordedIndexAt with its next heartbeat.
 */
export function indexAfter(u: HeartbeatUpdate): number {
  // Left only when the holder knows the entry (knownLive), so recordedIndexAt is set then.
  return heartbeatIndexScore(u) ?? u.recordedIndexAt!;
}

/** Identifies one session of one device, wherever its socket lives. */
export interface SessionRef {
  deviceId: string;
  sessionId: string;
  userId: string;
  instanceId: string;
}

/** A device as the REST API shows it; offline known devices keep their last facts. */
export interface DeviceView {
  deviceId: string;
  userId: string;
  online: boolean;
  platform?: string;
  instanceId?: string;
  sessionId?: string;
  connectedAt?: number;
  lastHeartbeatAt?: number;
  expiresAt?: number;
  interval?: number;
  lastSeenAt?: number;
  appState?: AppState;
  network?: string;
  /**
   * The `seq` of the device's last recorded presence event; 0 before any. Behind the device's
   * count of changes while its offline is held by the grace, or after a suppressed flap.
   */
  seq: number;
  /** Where else the device can be reached (register_push); never the token itself. */
  push?: { provider: string };
}

export interface InstanceView {
  instanceId: string;
  online: number;
  lastSeenAt: number;
}

/** An offline device shows who it belonged to and when it was last seen, nothing session-bound. */
export function offlineView(d: DeviceView): DeviceView {
  return {
    deviceId: d.deviceId,
    userId: d.userId,
    online: false,
    platform: d.platform,
    lastHeartbeatAt: d.lastHeartbeatAt,
    lastSeenAt: d.lastSeenAt,
    network: d.network,
    seq: d.seq,
    push: d.push,
  };
}
