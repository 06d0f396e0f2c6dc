import { HeartbeatSettings } from '../config/app-config';

/**
 * Presence lives for 2.5 heartbeat intervals plus a fixed slack (HEARTBEAT_TTL_SLACK_MS).
 *
 * - 2.5 intervals: a device may skip a beat (a radio that woke late, a timer a background app's
 *   OS held back) and be late with the next by half an interval before it counts as gone.
 * - The slack is for TCP. Heartbeats share one connection, so a lost packet is not skipped but
 *   retransmitted, and every later beat waits behind it: on a lossy link with a 600 ms round trip,
 *   two or three retransmissions of one segment (a tail-loss probe, then RTOs of about a round
 *   trip that double) hold the stream 2-5 s, however short the interval. Measured in the network
 *   lab (test/netlab-presence.e2e-spec.ts): with 2.5 intervals alone, 1 of 100 devices at 2 %
 *   loss and 300±100 ms each way went falsely offline within a minute at a 2 s interval.
 *
 * - On a slow link the slack grows with the round trip the device reports (`rtt` in its
 *   heartbeat, the SDK's smoothed ack round trip; `auth.rtt` in its handshake, for the TTL the
 *   session starts with): RTT_SLACK_FACTOR round trips on top, which
 *   covers a tail-loss probe and three doubling RTOs of one segment (each about a round trip plus
 *   its variance). At a 600 ms round trip the slack is 3 + 4.8 s. A device cannot buy itself more
 *   than MAX_RTT_SLACK_MS by claiming a huge round trip.
 *
 * So a device that died is offline at most 2.5 × interval + slack + SWEEP_INTERVAL_MS after its
 * last heartbeat reached the gateway (docs/presence-accuracy.md has the measured figures).
 */
export const TTL_FACTOR = 2.5;
export const DEFAULT_TTL_SLACK_MS = 3_000;
export const RTT_SLACK_FACTOR = 8;
export const MAX_RTT_SLACK_MS = 12_000;

export class HeartbeatPolicy {
  constructor(
    readonly settings: HeartbeatSettings,
    readonly ttlSlackMs = DEFAULT_TTL_SLACK_MS,
  ) {}

  /** The interval the device will use next: its own wish clamped to the server's bounds. */
  clamp(requested: number | undefined): number {
    if (requested === undefined) return this.settings.interval;
    return Math.min(this.settings.max, Math.max(this.settings.min, Math.round(requested)));
  }

  /** Presence lifetime for a beat at `interval` from a device that measured `rttMs` (if it says). */
  ttlFor(interval: number, rttMs?: number): number {
    const rttSlack = rttMs === undefined ? 0 : Math.min(MAX_RTT_SLACK_MS, Math.ceil(rttMs * RTT_SLACK_FACTOR));
    return Math.ceil(interval * TTL_FACTOR) + this.ttlSlackMs + rttSlack;
  }

  /**
   * What `ready` tells a fresh session, whose client announced `rttMs` with its handshake (if it
   * did): the first heartbeats of a new connection are the likeliest to wait behind retransmissions.
   */
  initial(rttMs?: number): HeartbeatSettings & { ttl: number } {
    return { ...this.settings, ttl: this.ttlFor(this.settings.interval, rttMs) };
  }
}
