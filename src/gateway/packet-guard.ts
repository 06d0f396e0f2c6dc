import { Clock } from '../common/clock';
import { TokenBucket } from '../common/token-bucket';
import { CLIENT_EVENTS } from '../channel/client-events';
import { DeviceSocket, errorAck } from '../channel/socket-events';

const KNOWN = new Set<string>(CLIENT_EVENTS);

/**
 * An `auth` payload carries a whole token, which can be larger than MAX_PAYLOAD_BYTES allows (a
 * `topics` claim of 100 long patterns is over 16 KB): a token the handshake accepted must fit
 * its refresh too. Still well under the transport's frame limit.
 */
export const MAX_AUTH_PAYLOAD_BYTES = 32 * 1024;

export interface PacketLimits {
  maxPayloadBytes: number;
  eventsPerSecond: number;
}

/** The session's token lifetime, as the guard needs it. */
export interface TokenCheck {
  /** The token ran out more than the grace ago: the session is over. */
  ranOut(): boolean;
  /** Ends the session (`token_expired`). */
  end(): void;
}

/**
 * Screens every client packet before a handler sees it: unknown events, oversized payloads and
 * floods are answered with an error ack (when the client asked for one) and dropped, so they cost
 * no Redis work and cannot reach other sockets. Frames beyond the transport limit
 * (maxHttpBufferSize) never get here: Socket.IO closes that one connection. A packet that comes
 * after the session's token ran out (past the grace) is not handled either: it is answered
 * `token_expired` and the session is ended (a heartbeat must not keep it alive).
 */
export function guardPackets(socket: DeviceSocket, limits: PacketLimits, clock: Clock, token: TokenCheck): void {
  const bucket = new TokenBucket(limits.eventsPerSecond, clock);
  socket.use((packet, next) => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
    const refuse = (reply: ReturnType<typeof errorAck>) => ack?.(reply);
    // A session the server is closing handles nothing more (a heartbeat must not revive it).
    if (socket.data.session.closing) return;
    if (token.ranOut()) {
      // The answer goes out before the close starts, so a client that asked learns why.
      refuse(errorAck('token_expired', 'the session token ran out; reconnect with a fresh token'));
      return token.end();
    }
    if (typeof event !== 'string' || !KNOWN.has(event)) {
      return refuse(errorAck('unknown_event', `unknown event "${String(event)}"; known: ${CLIENT_EVENTS.join(', ')}`));
    }
    if (!bucket.take()) {
      return refuse(errorAck('rate_limited', `more than ${limits.eventsPerSecond} events per second`));
    }
    const size = payloadBytes(args);
    const limit = event === 'auth' ? Math.max(limits.maxPayloadBytes, MAX_AUTH_PAYLOAD_BYTES) : limits.maxPayloadBytes;
    if (size > limit) {
      return refuse(errorAck('payload_too_large', `payload is ${size} bytes, the limit is ${limit}`));
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
