import { Clock } from '../common/clock';
import { CLIENT_EVENTS } from '../channel/client-events';
import { DeviceChannel } from '../channel/device-channel';
import { DeviceSocket, errorAck } from '../channel/socket-events';
import { MetricsService } from '../metrics/metrics.service';
import { EventBudget } from './event-budget';

const KNOWN = new Set<string>(CLIENT_EVENTS);

/**
 * How long a socket over its budget is left unread: until its next token is due, but at least
 * MIN_PAUSE_MS, doubled each time it is still over its budget right after the last pause, up to
 * MAX_PAUSE_MS. A client that overshot once waits a tenth of a second; a flood is read twice a
 * second, whatever the budget (tokens keep accruing meanwhile, so the budget is not cut), and
 * every clock second still sees it and counts it over.
 */
export const MIN_PAUSE_MS = 100;
export const MAX_PAUSE_MS = 500;

/**
 * An `auth` payload carries a whole token, which can be larger than MAX_PAYLOAD_BYTES allows (a
 * `topics` claim of 100 long patterns is over 16 KB): a token the handshake accepted must fit
 * its refresh too. Still well under the transport's frame limit.
 */
export const MAX_AUTH_PAYLOAD_BYTES = 32 * 1024;

export interface PacketLimits {
  maxPayloadBytes: number;
  eventsPerSecond: number;
  /** SOCKET_MAX_BUFFERED_BYTES: refusals are not acked to a client that stopped reading. */
  maxBufferedBytes: number;
}

/** The session's token lifetime, as the guard needs it (one for every socket). */
export interface TokenCheck {
  /** The socket's token ran out more than the grace ago: the session is over. */
  ranOut(socket: DeviceSocket): boolean;
  /** Ends the socket's session (`token_expired`). */
  end(socket: DeviceSocket): void;
}

/**
 * Screens every client packet before a handler sees it. First the budget (EventBudget): every
 * packet takes a token as it arrives, good or bad; acks of the notifications sent to the socket
 * are free, one per notification even when it comes after the ack timeout (we asked for them; a
 * slow client must not be ended for answering late). Without a token the packet is refused and
 * the socket's connection is not read again until the next token is due (see MIN_PAUSE_MS), so a
 * flood waits in the flooder's own buffers instead of this event loop; a socket over budget for 5
 * seconds in a row is ended with `rate_limited`. A packet that comes after the session's token ran
 * out (past the grace) is not handled either: it is answered `token_expired` and the session is
 * ended (a heartbeat must not keep it alive). Then unknown events and oversized payloads.
 * Refusals get an error ack where the client asked for one, and cost no Redis work. Frames beyond
 * the transport limit (maxHttpBufferSize) never get here: Socket.IO closes that one connection.
 */
export function guardPackets(
  socket: DeviceSocket,
  limits: PacketLimits,
  clock: Clock,
  channel: DeviceChannel,
  metrics: MetricsService,
  token: TokenCheck,
): void {
  const budget = new EventBudget(limits.eventsPerSecond, clock);
  const refusals = metrics.rateLimited.labels({ limit: 'socket_events' });
  let holdMs = 0;
  let heldUntil = -Infinity;
  const holdBack = () => {
    const now = clock.now();
    const next = now <= heldUntil + MIN_PAUSE_MS ? Math.min(MAX_PAUSE_MS, holdMs * 2) : MIN_PAUSE_MS;
    const ms = Math.min(MAX_PAUSE_MS, Math.max(next, budget.msUntilNextToken()));
    if (channel.pauseReading(socket, ms)) {
      holdMs = next;
      heldUntil = now + ms;
    }
  };
  /** Takes a token for one packet; false when it is refused (and the socket may be ended or held back). */
  const spend = (): boolean => {
    const verdict = budget.take();
    if (verdict.end) {
      metrics.rateLimitedSockets.inc();
      channel.closeSocket(socket, 'rate_limited');
    } else if (!verdict.allowed) {
      refusals.inc();
      holdBack();
    }
    return verdict.allowed && !verdict.end;
  };
  // Every packet is counted as it arrives, so a refusal stops reading at once (mid-flood, not a
  // whole read later). Events reach the middleware below a tick later, in arrival order: their
  // verdicts wait for them in that order.
  const verdicts = new VerdictQueue();
  channel.onClientPackets(socket, (kind) => {
    if (socket.data.session.closing || (kind === 'ack' && channel.takeAckOwed(socket))) return;
    const allowed = spend();
    if (kind === 'event') verdicts.push(allowed);
  });

  socket.use((packet, next) => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
    const refuse = (reply: ReturnType<typeof errorAck>) => ack?.(reply);
    // A session the server is closing handles nothing more (a heartbeat must not revive it).
    if (socket.data.session.closing) return;
    if (!verdicts.shift()) {
      // Only to a client that reads what it is sent: refusals must not pile up in memory here.
      if (ack && channel.bufferedBytes(socket) < limits.maxBufferedBytes) {
        ack(errorAck('rate_limited', `more than ${limits.eventsPerSecond} events per second`));
      }
      return;
    }
    if (token.ranOut(socket)) {
      // The answer goes out before the close starts, so a client that asked learns why.
      refuse(errorAck('token_expired', 'the session token ran out; reconnect with a fresh token'));
      return token.end(socket);
    }
    if (typeof event !== 'string' || !KNOWN.has(event)) {
      return refuse(errorAck('unknown_event', `unknown event "${String(event)}"; known: ${CLIENT_EVENTS.join(', ')}`));
    }
    const size = payloadBytes(args);
    const limit = event === 'auth' ? Math.max(limits.maxPayloadBytes, MAX_AUTH_PAYLOAD_BYTES) : limits.maxPayloadBytes;
    if (size > limit) {
      return refuse(errorAck('payload_too_large', `payload is ${size} bytes, the limit is ${limit}`));
    }
    next();
  });
}

/** First in, first out, in constant time per packet however many a read brings. */
class VerdictQueue {
  private items: boolean[] = [];
  private head = 0;

  push(allowed: boolean): void {
    this.items.push(allowed);
  }

  /** The oldest verdict; `true` if none is waiting (a packet that arrived while nothing was counted). */
  shift(): boolean {
    if (this.head >= this.items.length) return true;
    const allowed = this.items[this.head++] ?? true;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return allowed;
  }
}

function payloadBytes(args: unknown[]): number {
  try {
    return Buffer.byteLength(JSON.stringify(args) ?? '');
  } catch {
    return Infinity;
  }
}
