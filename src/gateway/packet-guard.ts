import { Clock } from '../common/clock';
import { CLIENT_EVENTS } from '../channel/client-events';
import { DeviceChannel } from '../channel/device-channel';
import { DeviceSocket, errorAck } from '../channel/socket-events';
import { MetricsService } from '../metrics/metrics.service';
import { EventBudget } from './event-budget';

const KNOWN = new Set<string>(CLIENT_EVENTS);

/** The longest a socket over its budget is left unread at a time (it is read again to see if it still floods). */
export const MAX_PAUSE_MS = 500;

export interface PacketLimits {
  maxPayloadBytes: number;
  eventsPerSecond: number;
  /** SOCKET_MAX_BUFFERED_BYTES: refusals are not acked to a client that stopped reading. */
  maxBufferedBytes: number;
}

/**
 * Screens every client packet before a handler sees it. First the budget (EventBudget): every
 * packet takes a token, good or bad; the acks of our own emits are free (we asked for them).
 * Without a token the packet is refused and the socket's connection is not read again until the
 * next token is due, so a flood waits in the flooder's own buffers instead of this event loop;
 * a socket over budget for 5 seconds in a row is ended with `rate_limited`. Then unknown events
 * and oversized payloads. Refusals get an error ack where the client asked for one, and cost no
 * Redis work. Frames beyond the transport limit (maxHttpBufferSize) never get here: Socket.IO
 * closes that one connection.
 */
export function guardPackets(socket: DeviceSocket, limits: PacketLimits, clock: Clock, channel: DeviceChannel, metrics: MetricsService): void {
  const budget = new EventBudget(limits.eventsPerSecond, clock);
  const refusals = metrics.rateLimited.labels({ limit: 'socket_events' });
  /** Takes a token for one packet; false when it is refused (and the socket may be ended or paused). */
  const spend = (): boolean => {
    const verdict = budget.take();
    if (verdict.end) {
      metrics.rateLimitedSockets.inc();
      channel.closeSocket(socket, 'rate_limited');
    } else if (!verdict.allowed) {
      refusals.inc();
      channel.pauseReading(socket, Math.min(MAX_PAUSE_MS, Math.max(1, budget.msUntilNextToken())));
    }
    return verdict.allowed && !verdict.end;
  };
  // Events are counted where they are handled (below, a turn after they arrive); the rest here,
  // as they arrive, since no middleware sees them.
  channel.onClientPackets(socket, (kind) => {
    if (kind === 'other' && !socket.data.session.closing) spend();
  });

  socket.use((packet, next) => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
    const refuse = (reply: ReturnType<typeof errorAck>) => ack?.(reply);
    // A session the server is closing handles nothing more (a heartbeat must not revive it).
    if (socket.data.session.closing) return;
    if (!spend()) {
      // Only to a client that reads what it is sent: refusals must not pile up in memory here.
      if (ack && channel.bufferedBytes(socket) < limits.maxBufferedBytes) {
        ack(errorAck('rate_limited', `more than ${limits.eventsPerSecond} events per second`));
      }
      return;
    }
    if (typeof event !== 'string' || !KNOWN.has(event)) {
      return refuse(errorAck('unknown_event', `unknown event "${String(event)}"; known: ${CLIENT_EVENTS.join(', ')}`));
    }
    const size = payloadBytes(args);
    if (size > limits.maxPayloadBytes) {
      return refuse(errorAck('payload_too_large', `payload is ${size} bytes, the limit is ${limits.maxPayloadBytes}`));
    }
    next();
  });
}

function payloadBytes(args: unknown[]): number {
  try {
    return Buffer.byteLength(JSON.stringify(args) ?? '');
  } catch {
    return Infinity;
  }
}
