import { HeartbeatSettings } from '../config/app-config';

/**
 * Presence lives for 2.5 heartbeat intervals: two heartbeats may be lost (a NAT rebinding, a
 * radio that woke late, a packet dropped on a handover) before a device counts as gone, and the
 * extra half interval absorbs network latency and timer drift so a device whose beats arrive a
 * little late is not flapped offline.
 */
export const TTL_FACTOR = 2.5;

export class HeartbeatPolicy {
  constructor(readonly settings: HeartbeatSettings) {}

  /** The interval the device will use next: its own wish clamped to the server's bounds. */
  clamp(requested: number | undefined): number {
    if (requested === undefined) return this.settings.interval;
    return Math.min(this.settings.max, Math.max(this.settings.min, Math.round(requested)));
  }

  ttlFor(interval: number): number {
    return Math.ceil(interval * TTL_FACTOR);
  }

  /** What `ready` tells a fresh session. */
  initial(): HeartbeatSettings & { ttl: number } {
    return { ...this.settings, ttl: this.ttlFor(this.settings.interval) };
  }
}
