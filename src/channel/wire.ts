import type { Socket as NetSocket } from 'node:net';
import type { DeviceSocket } from './socket-events';

/**
 * What the gateway needs from below Socket.IO's public API: how many bytes a connection holds
 * for its client, how to let go of its TCP connection at once, how to stop reading from it for a
 * while, and every packet the client sends before Socket.IO decodes it. Engine.IO, ws and
 * Socket.IO expose these only as properties of their objects, so every such access lives here,
 * read defensively: a transport without them counts as holding nothing, closes the usual way and
 * is read as usual.
 */
interface EnginePacket {
  data?: unknown;
}

interface WsLike {
  bufferedAmount?: number;
  _socket?: NetSocket | null;
  terminate?: () => void;
}

interface TransportLike {
  name?: string;
  socket?: WsLike;
  req?: { socket?: NetSocket } | null;
  dataReq?: { socket?: NetSocket } | null;
}

interface EngineLike {
  writeBuffer?: EnginePacket[];
  transport?: TransportLike;
  /** `packet`: every packet the client sent, as it arrives; `packetCreate`: every packet we send. */
  on(event: 'packet' | 'packetCreate', listener: (packet: { type?: string; data?: unknown }) => void): void;
}

function engine(socket: DeviceSocket): EngineLike {
  return socket.conn as unknown as EngineLike;
}

/** Bytes queued for this client in the process: Engine.IO's write buffer plus the transport's. */
export function bufferedBytes(socket: DeviceSocket): number {
  const conn = engine(socket);
  let bytes = 0;
  for (const packet of conn.writeBuffer ?? []) {
    const data = packet.data;
    if (typeof data === 'string') bytes += data.length;
    else if (data instanceof Uint8Array) bytes += data.byteLength;
  }
  const transport = conn.transport;
  if (transport?.name === 'websocket') bytes += transport.socket?.bufferedAmount ?? 0;
  else bytes += (transport?.req?.socket?.writableLength ?? 0) + (transport?.dataReq?.socket?.writableLength ?? 0);
  return bytes;
}

/** The TCP connections this socket's transport holds now (one for WebSocket; the pending requests for polling). */
export function tcpConnections(socket: DeviceSocket): NetSocket[] {
  const transport = engine(socket).transport;
  const found = [transport?.socket?._socket, transport?.req?.socket, transport?.dataReq?.socket];
  return found.filter((s): s is NetSocket => !!s && !s.destroyed);
}

/**
 * Lets go of the connection now: Engine.IO closes without waiting for its buffer to drain (what
 * is unsent is discarded; the inbox still holds every notification), and the TCP connections are
 * reset instead of waiting for a closing handshake the client may never answer.
 */
export function release(socket: DeviceSocket, connections: readonly NetSocket[]): void {
  socket.conn.close(true);
  for (const tcp of connections) {
    if (tcp.destroyed) continue;
    // What the client sent and was not read is dropped unparsed (on close, ws would otherwise
    // parse all that is buffered in one go).
    if (notReading.has(tcp)) {
      tcp.removeAllListeners('data');
      while (tcp.read() !== null);
    }
    cut(tcp);
  }
}

/**
 * Closes a TCP connection with a reset: the kernel frees it at once. `destroy()` alone would leave
 * it to the kernel to deliver what is queued, then a FIN, to a peer that is gone (a dead link, a
 * NAT that dropped the mapping): the socket would linger in FIN_WAIT1 retransmitting for minutes.
 */
function cut(tcp: NetSocket): void {
  try {
    tcp.resetAndDestroy();
  } catch {
    tcp.destroy(); // not a TCP handle (a pipe in tests): nothing lingers anyway
  }
}

/** Connections this process is not reading now: held back for a while, or stopped for good. */
const notReading = new WeakMap<NetSocket, 'held' | 'stopped'>();

/** What one wake-up after a hold hands to the WebSocket parser: a few hundred small frames at most. */
export const TRICKLE_BYTES = 4 * 1024;

function websocketConnection(socket: DeviceSocket): NetSocket | undefined {
  const transport = engine(socket).transport;
  const tcp = transport?.name === 'websocket' ? transport.socket?._socket : undefined;
  return tcp && !tcp.destroyed ? tcp : undefined;
}

/**
 * Stops reading the client's WebSocket connection for `ms`: what it sends meanwhile waits in the
 * kernel buffers (its own, once ours are full), so a client sending faster than it may is slowed
 * down where it costs this process nothing, and the event loop serves the other sockets. When the
 * time is up, at most TRICKLE_BYTES of what is buffered are parsed first: a client still over its
 * budget is held back again after those (a few milliseconds of work), not after a whole 64 KiB
 * read of tiny frames; one within it is read as usual from there. Long polling has no connection
 * to hold back (it sends one request at a time anyway). False when nothing was paused (not a
 * WebSocket, already held).
 */
export function pauseReading(socket: DeviceSocket, ms: number): boolean {
  const tcp = websocketConnection(socket);
  if (!tcp || notReading.has(tcp)) return false;
  notReading.set(tcp, 'held');
  tcp.pause();
  const timer = setTimeout(() => {
    if (tcp.destroyed || notReading.get(tcp) !== 'held') return;
    notReading.delete(tcp);
    // read(n) hands those bytes to the 'data' listeners (ws) while the stream stays paused.
    if (tcp.readableLength > 0) tcp.read(Math.min(tcp.readableLength, TRICKLE_BYTES));
    if (!notReading.has(tcp) && !tcp.destroyed) tcp.resume();
  }, ms);
  timer.unref();
  return true;
}

/** Stops reading the client's connection for good: a session that is being closed handles nothing more. */
export function stopReading(socket: DeviceSocket): void {
  const tcp = websocketConnection(socket);
  if (!tcp) return;
  notReading.set(tcp, 'stopped');
  tcp.pause();
}

/**
 * What a client packet is, read from its first bytes before Socket.IO decodes it: an `event` of
 * the main namespace (what socket.use middleware sees, a turn later), an `ack` (of one of our
 * emits, or claiming to be), or `other` (namespace packets, binary attachments).
 */
export type ClientPacketKind = 'event' | 'ack' | 'other';

/** Calls `listener` for every Socket.IO packet the client sends, as it arrives. */
export function onClientPackets(socket: DeviceSocket, listener: (kind: ClientPacketKind) => void): void {
  engine(socket).on('packet', (packet) => {
    if (packet.type === 'message') listener(kindOf(packet.data));
  });
}

function kindOf(data: unknown): ClientPacketKind {
  if (typeof data !== 'string' || data.charAt(1) === '/') return 'other';
  // Socket.IO packet types: 2 EVENT, 5 BINARY_EVENT, 3 ACK, 6 BINARY_ACK; a "/" next names another namespace.
  switch (data.charAt(0)) {
    case '2':
    case '5':
      return 'event';
    case '3':
    case '6':
      return 'ack';
    default:
      return 'other';
  }
}

/**
 * Calls `listener` whenever something other than a heartbeat and its ack crosses the connection:
 * a transport ping, any other event either way (a notification, its ack, a subscribe). Smart
 * heartbeat learns from idle gaps; a gap with other traffic in it refreshed the NAT mapping and
 * proves nothing about how long an idle one survives.
 */
export function onOtherTraffic(socket: DeviceSocket, listener: () => void): void {
  const conn = engine(socket);
  conn.on('packet', (packet) => {
    if (packet.type === 'message' && !isHeartbeat(packet.data)) listener();
  });
  conn.on('packetCreate', (packet) => {
    // Acks answer what the client sent (a heartbeat, or an event already counted on arrival).
    if (packet.type === 'ping' || (packet.type === 'message' && !(typeof packet.data === 'string' && packet.data.startsWith('3')))) listener();
  });
}

const HEARTBEAT_EVENT = '["heartbeat"';

/** `2["heartbeat",…]` or `2<ackId>["heartbeat",…]`: a heartbeat event of the main namespace. */
function isHeartbeat(data: unknown): boolean {
  if (typeof data !== 'string' || data.charAt(0) !== '2') return false;
  let i = 1;
  while (i < data.length && data.charCodeAt(i) >= 48 && data.charCodeAt(i) <= 57) i++;
  return data.startsWith(HEARTBEAT_EVENT, i);
}

/**
 * Socket.IO keeps an emit's ack callback until the ack comes or the socket closes. The gateway
 * keeps callbacks past the ack timeout (a late ack still counts as delivered), so a client that
 * never acks would make that map grow with every push: at most `max` are kept per socket, and the
 * oldest (long timed out, as a rule) are forgotten first; an ack for one of those is ignored and
 * the notification stays in the inbox to be sent again.
 */
export function boundPendingAcks(socket: DeviceSocket, max: number): void {
  const acks = (socket as unknown as { acks?: Pick<Map<number, unknown>, 'keys' | 'size' | 'delete'> }).acks;
  if (!acks || acks.size <= max) return;
  for (const id of acks.keys()) {
    if (acks.size <= max) break;
    acks.delete(id);
  }
}
