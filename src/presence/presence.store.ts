import { OfflineReason } from '../events/event.types';
import { DeviceView, HeartbeatUpdate, InstanceView, SessionRef, SessionStart } from './presence.types';

/**
 * Where presence lives: Redis when REDIS_URL is set, process memory otherwise. Both keep the same
 * rules, checked by one shared test suite:
 * - a session is online while `expiresAt > now`, whatever the backing store has evicted yet;
 * - `heartbeat` and `disconnect` act only on the session they name, so an old socket can never
 *   refresh or remove its replacement;
 * - sessions are indexed by the instance holding them: each instance sweeps its own (it knows
 *   how late it is in handling their heartbeats), and any instance sweeps those of an instance
 *   that stopped reporting itself alive;
 * - `claimExpired` hands each expired session to exactly one caller, oldest first, and costs
 *   time in the number expired, not in the number online.
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

  /**
   * Removes up to `limit` sessions held by `owner` whose presence expired at or before `now`, and
   * returns them. `claimant` is the instance sweeping: an owner sweeping its own sessions is alive
   * by definition (`heartbeat_timeout`), whatever its liveness record says after a stall.
   */
  abstract claimExpired(owner: string, now: number, limit: number, claimant?: string): Promise<SessionRef[]>;

  /**
   * Records up to `limit` `device.offline` events held by PRESENCE_EVENT_GRACE_MS whose grace
   * ended at or before `now` (with the `user.offline` each makes), whoever held them; returns how
   * many it took. Each held event is recorded by exactly one caller.
   */
  abstract releaseHeldOfflines(now: number, limit: number): Promise<number>;

  /** Instances that still hold sessions in the store but stopped reporting themselves alive. */
  abstract orphanedOwners(now: number): Promise<string[]>;

  /** Known devices in the order asked; null for a device never seen or forgotten. */
  abstract getDevices(deviceIds: readonly string[], now: number): Promise<(DeviceView | null)[]>;

  abstract listUserDevices(userId: string, now: number): Promise<DeviceView[]>;

  /** The ids of a user's known devices (cheaper than listUserDevices when only targets are needed). */
  abstract userDeviceIds(userId: string, now: number): Promise<string[]>;

  abstract countOnline(now: number): Promise<number>;

  abstract touchInstance(instance: InstanceView, ttlMs: number): Promise<void>;

  abstract listInstances(now: number): Promise<InstanceView[]>;

  abstract removeInstance(instanceId: string): Promise<void>;

  /** Stable-interval samples of one network: { bucketMs: count }. */
  abstract networkHistogram(network: string, now: number): Promise<Record<string, number>>;

  /** The most recently sampled networks with their histograms. */
  abstract listNetworks(now: number, limit: number): Promise<{ network: string; histogram: Record<string, number> }[]>;

  /** Proves the store answers reads and writes; rejects when it does not. */
  abstract ping(): Promise<void>;
}
