import { Injectable } from '@nestjs/common';
import { DeviceChannel } from '../channel/device-channel';
import { DeviceSession, DeviceSocket, tokenRanOut } from '../channel/socket-events';
import { Clock } from '../common/clock';
import { DeadlineQueue } from '../common/deadline-queue';
import { AppConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';

/**
 * Token lifetime policy: a session lives on its token, and ends (`token_expired`) once that token
 * ran out TOKEN_EXPIRY_GRACE_MS ago, unless an `auth` gave it a fresh one first. The grace lets a
 * client whose refresh was delayed (a radio asleep, a slow token endpoint) catch up without a
 * reconnect.
 *
 * Deadlines of this instance's sessions wait in one queue that the sweeper's tick drains on the
 * injected clock: no timer per socket, and a tick looks only at sessions that are due. Between
 * ticks, the places where a lapsed session could still get something check its deadline
 * themselves (a push about to be sent, a packet from the device), so it receives nothing after it.
 * Ending a session gives it as much extra time as this process is behind (LoadMonitor), like
 * presence does: an `auth` that arrived in time must not lose to an overloaded event loop. What
 * it is sent is cut at the deadline itself (DeliveryService).
 */
@Injectable()
export class TokenExpiry {
  private readonly deadlines = new DeadlineQueue();

  constructor(
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly load: LoadMonitor,
  ) {}

  /** When a session on a token expiring at `tokenExpiresAt` is over. */
  deadlineFor(tokenExpiresAt: number): number {
    return tokenExpiresAt + this.config.tokenExpiryGraceMs;
  }

  /** Starts watching a session that just connected. */
  track(session: DeviceSession): void {
    this.deadlines.set(session.sessionId, session.tokenDeadline);
  }

  /** The session runs on a new token from now on (an accepted `auth`). */
  renew(session: DeviceSession, tokenExpiresAt: number): void {
    session.tokenExpiresAt = tokenExpiresAt;
    session.tokenDeadline = this.deadlineFor(tokenExpiresAt);
    this.track(session);
  }

  forget(session: DeviceSession): void {
    this.deadlines.delete(session.sessionId);
  }

  /** Ends every session here whose deadline passed; the sweeper runs this on each tick. Returns how many. */
  endDue(): number {
    let ended = 0;
    for (const sessionId of this.deadlines.takeDue(this.lateNow())) {
      const socket = this.channel.localSessionSocket(sessionId);
      if (socket && this.end(socket)) ended++;
    }
    return ended;
  }

  /** Whether the session is over: checked when it sends something between ticks. */
  ranOut(session: DeviceSession): boolean {
    return tokenRanOut(session, this.lateNow());
  }

  /** Ends the session with `token_expired`; false if it was already closing. */
  end(socket: DeviceSocket): boolean {
    if (socket.data.session.closing) return false;
    this.metrics.tokensExpired.inc();
    this.channel.closeSocket(socket, 'token_expired');
    return true;
  }

  /** Now, less how far behind this process is. */
  private lateNow(): number {
    return this.clock.now() - this.load.delay;
  }
}
