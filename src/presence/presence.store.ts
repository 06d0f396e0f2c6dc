import { OfflineReason } from '../events/event.types';
import type { DueIndex } from '../redis/due-partitions';
import { DeviceView, HeartbeatUpdate, InstanceView, SessionRef, SessionStart } from './presence.types';

/** Instance id -> how late it may be in handling heartbeats (ms). */
export type LiveInstances = ReadonlyMap<string, number>;

/**
 * Where presence lives: Redis when REDIS_URL is set, process memory otherwise. Both keep the same
 * rules, checked by one shared test suite:
 * - a session is online while `expiresAt > now`, whatever the backing store has evicted yet;
 * - `heartbeat` and `disconnect` act only on the session they name, so an old socket can never
 *   refresh or remove its replacement;
 * - sessions are indexed by partition (src/redis/partitions.ts; one partition in memory and on a
 *   single Redis), whatever instance holds them, and swept per partition by its lease holder with
 *   the list of live instances and how late each may be in handling its heartbeats: a live
 *   owner's session ends once past its TTL by more than that (`heartbeat_timeout`), a session
 *   whose owner is not live at its TTL (`instance_lost`);
 * - `claimExpired` hands each expired session to exactly one caller, oldest first within its
 *   partition, and costs time in the number expired, not in the number online.
 * - every change of presence appends its events (PRODUCT.md "Events for backends") to the event
 *   log in the same atomic step, and only a change that happened records anything; a heartbeat
 *   records nothing;
 * - with an event grace (PRESENCE_EVENT_GRACE_MS), the offline of a session that ended for a held
 *   reason is kept in the store, not recorded, until the grace ends: a reconnect of the device
 *   before then drops it and records no online either; presence itself changes at once.
 * Implementations take `now` from the caller (the injected clock) and hold no policy.
 */
export abstract class PresenceStore {
  /** Records a new session; returns the session it replaced, if one was still recorded. */
  abstract connect(start: SessionStart): Promise<SessionRef | null>;

  /** Extends a live session; false when that session is no longer the device's or has expired. */
  abstract heartbeat(update: HeartbeatUpdate): Promise<boolean>;

  /** Ends the named sessions (disconnects, kicks, drain) for `reason`; returns how many were still current. */
  abstract disconnect(sessions: readonly SessionRef[], now: number, reason: OfflineReason): Promise<number>;

  /** How many partitions sessions are indexed in (claimExpired, releaseHeldOfflines). */
  abstract get partitions(): number;

  /** The partition of a device's keys. */
  abstract partitionOf(deviceId: string): number;

  /**
   * Removes up to `limit` sessions of partition `partition` whose presence ran out, and returns
   * them. `live`: the instances alive now -> how late each may be in handling its heartbeats (ms):
   * a live owner's session ends once `now` is past its expiry by more than that, with
   * `heartbeat_timeout`; the session of an owner not in `live` ends at its expiry, `instance_lost`.
   */
  abstract claimExpired(partition: number, now: number, limit: number, live: LiveInstances): Promise<SessionRef[]>;

  /**
   * The partition's periodic step: records up to `limit` `device.offline` events held by
   * PRESENCE_EVENT_GRACE_MS whose grace ended at or before `now` (with the `user.offline` each
   * makes), whoever held them, and finishes the user.* decisions a dead caller left (Redis);
   * returns how many held events it took. Each held event is recorded by exactly one caller.
   */
  abstract releaseHeldOfflines(partition: number, now: number, limit: number): Promise<number>;

  /**
   * The per-partition indexes claimExpired (`sweep`) and releaseHeldOfflines (`tick`) start from,
   * and when an entry in them is due at `now`: DuePartitions reads their heads to skip the
   * partitions with nothing due. None (a store without per-partition indexes): every partition is
   * worked on.
   */
  dueIndexes(_job: 'sweep' | 'tick', _now: number): readonly DueIndex[] {
    return [];
  }

  /** Known devices in the order asked; null for a device never seen or forgotten. */
  abstract getDevices(deviceIds: readonly string[], now: number): Promise<(DeviceView | null)[]>;

  abstract listUserDevices(userId: string, now: number): Promise<DeviceView[]>;

  /** The ids of a user's known devices (cheaper than listUserDevices when only targets are needed). */
  abstract userDeviceIds(userId: string, now: number): Promise<string[]>;

  abstract countOnline(now: number): Promise<number>;

  /** Reports an instance alive for ttlMs, with its local session count and its `delay` (LoadMonitor, ms). */
  abstract touchInstance(instance: InstanceView, ttlMs: number, delay?: number): Promise<void>;

  abstract listInstances(now: number): Promise<InstanceView[]>;

  /** The instances whose report has not run out -> the delay each published. */
  abstract liveInstances(now: number): Promise<LiveInstances>;

  abstract removeInstance(instanceId: string): Promise<void>;

  /** Stable-interval samples of one network: { bucketMs: count }. */
  abstract networkHistogram(network: string, now: number): Promise<Record<string, number>>;

  /** The most recently sampled networks with their histograms. */
  abstract listNetworks(now: number, limit: number): Promise<{ network: string; histogram: Record<string, number> }[]>;

  /** Proves the store answers reads and writes; rejects when it does not. */
  abstract ping(): Promise<void>;
}
