import { Clock } from '../common/clock';
import { TokenBucket } from '../common/token-bucket';
import { CLIENT_EVENTS } from '../channel/client-events';
import { DeviceSocket, errorAck } from '../channel/socket-events';

const KNOWN = new Set<string>(CLIENT_EVENTS);

export interface PacketLimits {
  maxPayloadBytes: number;
  eventsPerSecond: number;
}

/**
 * Screens every client packet before a handler sees it: unknown events, oversized payloads and
 * floods are answered with an error ack (when the client asked for one) and dropped, so they cost
 * no Redis work and cannot reach other sockets. Frames beyond the transport limit
 * (maxHttpBufferSize) never get here: Socket.IO closes that one connection.
 */
export function guardPackets(socket: DeviceSocket, limits: PacketLimits, clock: Clock): void {
  const bucket = new TokenBucket(limits.eventsPerSecond, clock);
  socket.use((packet, next) => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
    const refuse = (reply: ReturnType<typeof errorAck>) => ack?.(reply);
    // A session the server is closing handles nothing more (a heartbeat must not revive it).
    if (socket.data.session.closing) return;
    if (typeof event !== 'string' || !KNOWN.has(event)) {
      return refuse(errorAck('unknown_event', `unknown event "${String(event)}"; known: ${CLIENT_EVENTS.join(', ')}`));
    }
    if (!bucket.take()) {
      return refuse(errorAck('rate_limited', `more than ${limits.eventsPerSecond} events per second`));
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
