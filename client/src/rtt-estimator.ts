/**
 * Round-trip estimate for heartbeat acks, the way TCP estimates its retransmission timeout
 * (RFC 6298): a smoothed RTT and its variation, so a beat waits about as long as an ack on this
 * link can take and no longer. A fixed 10 s wait made a dead link take 20 s to notice.
 */
export const MIN_ACK_TIMEOUT_MS = 1_500;
export const MAX_ACK_TIMEOUT_MS = 10_000;

export class RttEstimator {
  private srttMs?: number;
  private rttvarMs?: number;

  /**
   * The handshake (transport, Engine.IO open, Socket.IO connect, `ready`) takes at least two
   * round trips: half of it is a first, generous sample until heartbeat acks are measured.
   */
  seedFromHandshake(handshakeMs: number): void {
    this.srttMs = undefined;
    this.sample(Math.max(0, handshakeMs) / 2);
  }

  sample(rttMs: number): void {
    if (this.srttMs === undefined || this.rttvarMs === undefined) {
      this.srttMs = rttMs;
      this.rttvarMs = rttMs / 2;
      return;
    }
    this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - rttMs);
    this.srttMs = 0.875 * this.srttMs + 0.125 * rttMs;
  }

  get srtt(): number | undefined {
    return this.srttMs;
  }

  get rttvar(): number | undefined {
    return this.rttvarMs;
  }

  /** How long a heartbeat waits for its ack: 3 srtt + 4 rttvar within [1.5 s, 10 s]. */
  get timeoutMs(): number {
    if (this.srttMs === undefined || this.rttvarMs === undefined) return MAX_ACK_TIMEOUT_MS;
    return Math.round(Math.min(MAX_ACK_TIMEOUT_MS, Math.max(MIN_ACK_TIMEOUT_MS, 3 * this.srttMs + 4 * this.rttvarMs)));
  }
}
