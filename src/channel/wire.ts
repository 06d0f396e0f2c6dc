import type { Socket as NetSocket } from 'node:net';
import type { DeviceSocket } from './socket-events';

/**
 * What the gateway needs from below Socket.IO's public API: how many bytes a connection holds
 * for its client, and how to let go of its TCP connection at once. Engine.IO and ws expose these
 * only as properties of their transports, so every such access lives here, read defensively:
 * a transport without them counts as holding nothing and closes the usual way.
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
 * destroyed instead of waiting for a closing handshake the client may never answer.
 */
export function release(socket: DeviceSocket, connections: readonly NetSocket[]): void {
  socket.conn.close(true);
  for (const tcp of connections) if (!tcp.destroyed) tcp.destroy();
}
