import { Injectable } from '@nestjs/common';
import { TransientMap } from '../common/transient-map';
import { SessionRef } from '../presence/presence.types';
import { InstanceMailbox } from '../redis/instance-mailbox';
import { CloseReason, DeviceServer, DeviceSocket, InterServerEvents, NotificationPayload, ReadyPayload, RECONNECT_AFTER, sessionRef } from './socket-events';
import { boundPendingAcks, bufferedBytes, ClientPacketKind, onClientPackets, onOtherTraffic, pauseReading, release, stopReading, tcpConnections } from './wire';

/**
 * The only rooms sockets join: topics, looked up across instances with fetchSockets. Nothing is
 * emitted to a device, user or session room (deliveries and closes go to the holding instance's
 * mailbox), so sockets join none: with the sharded adapter each room would be one SSUBSCRIBE.
 */
export const rooms = {
  topic: (topic: string) => `topic:${topic}`,
};

const TOPIC_ROOM = rooms.topic('');

/** The topics a socket has joined. */
export function joinedTopics(socket: DeviceSocket): string[] {
  return [...socket.rooms].filter((r) => r.startsWith(TOPIC_ROOM)).map((r) => r.slice(TOPIC_ROOM.length));
}

const RECHECK_EVENT = 'push-gateway:recheck';

/** What an instance hands to its delivery: a stored notification for sockets it holds. */
export interface InboundDelivery {
  payload: NotificationPayload;
  bytes: number;
  deviceIds: string[];
}

/**
 * How long a closing session may take to flush its last message and close cleanly before its
 * connection is cut: well inside the 1 s in which a closed session must let go of its TCP
 * connection.
 */
export const CLOSE_GRACE_MS = 500;

/** Ack callbacks kept per socket, late ones included (see boundPendingAcks in wire.ts). */
export const MAX_PENDING_ACKS = 1_000;

export type PushOutcome = { acked: true; latencyMs: number } | { acked: false };

/**
 * The Socket.IO side of the gateway: the only class that emits to devices or closes their sockets.
 * Sockets on this instance are reached directly; others through the instance that holds them
 * (its mailbox, see InstanceMailbox), so the same calls work wherever a device is connected. It
 * holds no policy.
 */
@Injectable()
export class DeviceChannel {
  private server?: DeviceServer;
  private readonly local = new Map<string, DeviceSocket>();
  /** deviceId -> its socket here, for emits that need no other instance. */
  private readonly localDevices = new Map<string, DeviceSocket>();
  private readonly readyListeners: ((socket: DeviceSocket) => void)[] = [];
  private readonly startingListeners: ((socket: DeviceSocket) => void)[] = [];
  private deliverListener?: (delivery: InboundDelivery) => void;
  private recheckListener?: (deviceIds: string[]) => void;
  private draining = false;
  private instanceId = '';
  /** The notification being pushed to many sockets in one run, encoded once (see withSharedEncoding). */
  private shared?: { payload: NotificationPayload; encoded?: { id: number; packets: unknown[] } };
  /** Acks each socket may still send for the notifications emitted to it, on time or late. */
  private readonly acksOwed = new WeakMap<DeviceSocket, number>();
  /** Topic room -> its sockets here, kept from the adapter's room events (see TopicMembers). */
  private readonly topicMembers = new Map<string, TopicMembers>();

  constructor(private readonly mailbox: InstanceMailbox) {}

  attach(server: DeviceServer, instanceId: string): void {
    this.server = server;
    this.instanceId = instanceId;
    // Mail from other instances (formats: see deliverRemote and close).
    this.mailbox.on('C', (body) => {
      const [reason, sessionIds] = JSON.parse(body) as [CloseReason, string[]];
      sessionIds.forEach((id) => this.closeLocal(id, reason));
    });
    this.mailbox.on('D', (body) => {
      const split = body.indexOf('\n');
      const deviceIds = JSON.parse(body.slice(0, split)) as string[];
      const json = body.slice(split + 1);
      this.deliverListener?.({ payload: JSON.parse(json) as NotificationPayload, bytes: Buffer.byteLength(json), deviceIds });
    });
    server.on(RECHECK_EVENT, (deviceIds) => this.recheckListener?.(deviceIds));
    const namespace = server.of('/');
    // The adapter emits join-room once per socket and room (not again while it is in), leave-room once when it goes.
    namespace.adapter.on('join-room', (room: string, socketId: string) => {
      if (!room.startsWith(TOPIC_ROOM)) return;
      let members = this.topicMembers.get(room);
      if (!members) this.topicMembers.set(room, (members = { sockets: new Map(), devices: new Map(), unknown: 0 }));
      const deviceId = namespace.sockets.get(socketId)?.data.session?.deviceId;
      members.sockets.set(socketId, deviceId);
      if (deviceId === undefined) members.unknown++;
      else countDevice(members, deviceId);
    });
    namespace.adapter.on('leave-room', (room: string, socketId: string) => {
      const members = this.topicMembers.get(room);
      if (!members?.sockets.has(socketId)) return;
      const deviceId = members.sockets.get(socketId);
      members.sockets.delete(socketId);
      if (deviceId === undefined) members.unknown--;
      else {
        const count = members.devices.get(deviceId)! - 1;
        if (count > 0) members.devices.set(deviceId, count);
        else members.devices.delete(deviceId);
      }
      if (members.sockets.size === 0) this.topicMembers.delete(room);
    });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  register(socket: DeviceSocket): void {
    // Socket.IO's map of ack callbacks (a set and a delete per notification) without its
    // old-generation garbage: see TransientMap. Socket.IO uses only get, set and delete on it.
    (socket as unknown as SocketInternals).acks = new TransientMap();
    const s = socket.data.session;
    this.local.set(s.sessionId, socket);
    this.localDevices.set(s.deviceId, socket);
  }

  unregister(socket: DeviceSocket): void {
    const s = socket.data.session;
    if (this.local.get(s.sessionId) === socket) this.local.delete(s.sessionId);
    if (this.localDevices.get(s.deviceId) === socket) this.localDevices.delete(s.deviceId);
  }

  get localCount(): number {
    return this.local.size;
  }

  localSessions(): SessionRef[] {
    return [...this.local.values()].map((socket) => sessionRef(socket.data.session, this.instanceId));
  }

  /** Runs `listener` for every session that became ready here (pending delivery hooks in here). */
  onSessionReady(listener: (socket: DeviceSocket) => void): void {
    this.readyListeners.push(listener);
  }

  /**
   * Runs `listener` as a session's presence write has just been issued, in the same event-loop
   * turn, before it is answered: what the listener asks of the same Redis connection goes out in
   * the same write and runs right after it (the delivery's first inbox read).
   */
  onSessionStarting(listener: (socket: DeviceSocket) => void): void {
    this.startingListeners.push(listener);
  }

  starting(socket: DeviceSocket): void {
    for (const listener of this.startingListeners) listener(socket);
  }

  /** Tells the device its session is live, then lets the listeners act on it. */
  ready(socket: DeviceSocket, payload: ReadyPayload): void {
    socket.emit('ready', payload);
    for (const listener of this.readyListeners) listener(socket);
  }

  /**
   * Closes sessions, here or on the instance that holds them. Each gets told why first:
   * `session_ended { reason, reconnect }` (`session_replaced` for a takeover, `server_draining`
   * for a drain). Sessions the device should not resume by itself (`replaced`, `kicked`) also get
   * Socket.IO's disconnect packet, so clients see `io server disconnect` and stay down; the others
   * see `transport close` and reconnect.
   */
  close(sessions: readonly SessionRef[], reason: CloseReason): void {
    const remote = new Map<string, string[]>();
    for (const s of sessions) {
      if (s.instanceId === this.instanceId) this.closeLocal(s.sessionId, reason);
      else remote.set(s.instanceId, [...(remote.get(s.instanceId) ?? []), s.sessionId]);
    }
    // Best effort, like every mailbox message: a close that is lost leaves a session whose presence
    // is already gone, and its next heartbeat finds out and ends it.
    for (const [instanceId, sessionIds] of remote) void this.mailbox.send(instanceId, 'C', JSON.stringify([reason, sessionIds]));
  }

  /**
   * Best effort: the in-memory adapter (one instance) has no other instance to tell, and with Redis
   * a lost message costs a delay, not data (inboxes are read again on the next connection).
   */
  private serverSideEmit<E extends keyof InterServerEvents>(event: E, ...args: Parameters<InterServerEvents[E]>): void {
    try {
      this.io.serverSideEmit(event, ...args);
    } catch {
      // no other instance
    }
  }

  /**
   * Closes one local session for good: from here on nothing more is sent to it, the last message
   * gets CLOSE_GRACE_MS to leave, then whatever is still buffered is discarded and the TCP
   * connection destroyed, so a client that stopped reading cannot keep memory or a connection.
   */
  closeSocket(socket: DeviceSocket, reason: CloseReason): void {
    const session = socket.data.session;
    if (session.closing) return;
    session.closing = reason;
    const connections = tcpConnections(socket);
    switch (reason) {
      case 'replaced':
        socket.emit('session_replaced', { sessionId: session.sessionId, reason: 'new_session' });
        break;
      case 'server_shutdown':
        socket.emit('server_draining', { instanceId: this.instanceId, reconnect: true });
        break;
      default:
        socket.emit('session_ended', { reason, reconnect: RECONNECT_AFTER[reason] });
    }
    // A flood is not read any further: its close handshake is not waited for either (release).
    if (reason === 'rate_limited') stopReading(socket);
    if (reason === 'replaced' || reason === 'kicked') socket.disconnect(true);
    else socket.conn.close();
    const deadline = setTimeout(() => release(socket, connections), CLOSE_GRACE_MS);
    deadline.unref();
    socket.conn.once('close', () => {
      // Engine.IO is done; a client that ignores the WebSocket closing handshake still loses its TCP connection then.
      if (connections.every((c) => c.destroyed)) clearTimeout(deadline);
    });
  }

  /** Bytes this instance holds for the socket, not yet taken by the client. */
  bufferedBytes(socket: DeviceSocket): number {
    return bufferedBytes(socket);
  }

  /** Stops reading what the client sends for `ms` (WebSocket only): backpressure on a client over its budget. False if it was not paused. */
  pauseReading(socket: DeviceSocket, ms: number): boolean {
    return pauseReading(socket, ms);
  }

  /**
   * Whether an ack the client sent answers a notification emitted to it (true at most once per
   * notification, however late the ack comes), rather than one nobody asked for.
   */
  takeAckOwed(socket: DeviceSocket): boolean {
    const owed = this.acksOwed.get(socket) ?? 0;
    if (owed === 0) return false;
    this.acksOwed.set(socket, owed - 1);
    return true;
  }

  /** Runs `listener` for every packet the client sends, as it arrives, before it is decoded (see wire.ts). */
  onClientPackets(socket: DeviceSocket, listener: (kind: ClientPacketKind) => void): void {
    onClientPackets(socket, listener);
  }

  /** Runs `listener` for any traffic but heartbeats and their acks on the socket (see wire.ts). */
  onOtherTraffic(socket: DeviceSocket, listener: () => void): void {
    onOtherTraffic(socket, listener);
  }

  /** Whether the session may still be sent to. */
  isOpen(socket: DeviceSocket): boolean {
    return socket.connected && !socket.data.session.closing;
  }

  private closeLocal(sessionId: string, reason: CloseReason): void {
    const socket = this.local.get(sessionId);
    if (socket) this.closeSocket(socket, reason);
  }

  /** The socket of a session, if that session is held here. */
  localSessionSocket(sessionId: string): DeviceSocket | undefined {
    return this.local.get(sessionId);
  }

  /** The socket this instance holds for a device, if it is here and open. */
  localSocket(deviceId: string): DeviceSocket | undefined {
    const socket = this.localDevices.get(deviceId);
    return socket && this.isOpen(socket) ? socket : undefined;
  }

  /** Receives the deliveries other instances route here (one listener: the delivery service). */
  onDeliver(listener: (delivery: InboundDelivery) => void): void {
    this.deliverListener = listener;
  }

  onRecheck(listener: (deviceIds: string[]) => void): void {
    this.recheckListener = listener;
  }

  /**
   * Hands a stored notification to the instance holding these devices' sockets: one message to
   * that instance's mailbox (not a room emit per device, not a broadcast every instance reads), and
   * the instance that holds a socket is the one that paces what it sends and records acks. The
   * notification is in the devices' inboxes already, so a lost message only delays it to their next
   * inbox read. Body: the device ids as a JSON array, a newline, the payload's JSON (JSON, not an
   * object: it keeps keys such as `__proto__` and is what the receiver counts as bytes).
   */
  deliverRemote(instanceId: string, delivery: InboundDelivery): void {
    void this.mailbox.send(instanceId, 'D', `${JSON.stringify(delivery.deviceIds)}\n${JSON.stringify(delivery.payload)}`);
  }

  /** Asks every instance to read these devices' inboxes again (after an uncertain write). */
  recheckRemote(deviceIds: string[]): void {
    this.serverSideEmit(RECHECK_EVENT, deviceIds);
  }

  /**
   * Emits one notification on a given socket; calls `onOutcome` once, on its ack or once
   * `timeoutMs` passed without one (a callback, not a promise: a fan-out has thousands of pushes
   * pending at once, and what each holds until its ack is what the young generation's scavenges
   * copy). An ack that comes later is still a receipt: it runs `onLateAck` (Socket.IO keeps that
   * callback, small and holding no payload, until the ack or the socket's end).
   *
   * Inside withSharedEncoding a notification is encoded once, not once per socket: the first push
   * of the payload makes its Socket.IO packet (an EVENT with an ack id from the namespace's counter, as `emit` would
   * take), and every socket it goes to gets those same bytes, with the ack callback registered
   * under that id in the socket's own ack map (ack ids are per socket, so one id serves them all:
   * how Socket.IO's own broadcast with acks works). A fan-out to 10k sockets encodes one packet.
   */
  pushTo(socket: DeviceSocket, payload: NotificationPayload, timeoutMs: number, onOutcome: (outcome: PushOutcome) => void, onLateAck?: () => void): void {
    this.acksOwed.set(socket, (this.acksOwed.get(socket) ?? 0) + 1);
    const callback = awaitAck(timeoutMs, onOutcome, onLateAck);
    const internals = socket as unknown as SocketInternals;
    const shared = this.shared?.payload === payload ? this.shared : undefined;
    let encoded = shared?.encoded;
    if (!encoded) {
      const id = internals.nsp._ids++;
      encoded = { id, packets: internals.client.encoder.encode({ type: EVENT_PACKET, nsp: socket.nsp.name, id, data: ['notification', payload] }) };
      if (shared) shared.encoded = encoded;
    }
    internals.acks.set(encoded.id, callback);
    // What socket.emit ends in (Socket.packet): a closed connection takes nothing.
    internals.client._packet(encoded.packets, { preEncoded: true, compress: true });
    boundPendingAcks(socket, MAX_PENDING_ACKS);
  }

  /**
   * Runs `send`, synchronous pushes of one notification to many sockets here (a fan-out), with the
   * notification encoded once for all of them (see pushTo). The packet is let go when `send`
   * returns: kept as long as the payload lives, it would double what an unacked push holds.
   */
  withSharedEncoding(payload: NotificationPayload, send: () => void): void {
    this.shared = { payload };
    try {
      send();
    } finally {
      this.shared = undefined;
    }
  }

  /**
   * The devices whose sockets are subscribed to a topic now, on every instance. With other
   * instances, Socket.IO's fetchSockets asks them all; alone (the adapter counts one server), the
   * members kept here are the answer. Measured on a 10k-device topic (bench fanout, before the
   * first write): fetchSockets (an object per local socket) about 20 ms, walking the adapter's
   * room and looking up each socket's session 12-18 ms, a walk of this index's sockets into a Set
   * 6-7 ms. On a slower machine that walk took 6.5-12.5 ms, and the list of the devices' keys it
   * keeps now 0.3 ms or less once warm (docs/performance.md, nineteenth round).
   */
  async topicDevices(topic: string): Promise<string[]> {
    const room = rooms.topic(topic);
    const namespace = this.io.of('/');
    if ((await namespace.adapter.serverCount()) > 1) {
      const sockets = await this.io.in(room).fetchSockets();
      return [...new Set(sockets.map((s) => s.data.session.deviceId))];
    }
    const members = this.topicMembers.get(room);
    if (!members) return [];
    if (members.unknown > 0) {
      // A socket that joined before it was in the namespace's list is looked up now, once.
      for (const [socketId, deviceId] of members.sockets) {
        if (deviceId !== undefined) continue;
        const id = namespace.sockets.get(socketId)?.data.session?.deviceId;
        if (id === undefined) continue;
        members.sockets.set(socketId, id);
        members.unknown--;
        countDevice(members, id);
      }
    }
    return [...members.devices.keys()];
  }

  /** Drain: refuse new handshakes, hint every local device to reconnect elsewhere, close transports. */
  drain(): SessionRef[] {
    this.draining = true;
    const sessions = this.localSessions();
    for (const socket of this.local.values()) this.closeSocket(socket, 'server_shutdown');
    return sessions;
  }

  private get io(): DeviceServer {
    if (!this.server) throw new Error('Socket.IO server is not attached yet');
    return this.server;
  }
}

/** socket.io-parser's PacketType.EVENT. */
const EVENT_PACKET = 2;

/**
 * A topic room's sockets on this instance: socket id -> device id (undefined while not known: a
 * socket that joined before it was in the namespace's list, looked up by topicDevices), and device
 * id -> how many of its sockets are in (during a session's replacement a device may have two), so
 * the room's devices are one list of keys, without a walk that removes duplicates.
 */
interface TopicMembers {
  sockets: Map<string, string | undefined>;
  devices: Map<string, number>;
  unknown: number;
}

/** One more of the device's sockets is in the room. */
function countDevice(members: TopicMembers, deviceId: string): void {
  members.devices.set(deviceId, (members.devices.get(deviceId) ?? 0) + 1);
}

/**
 * The parts of Socket.IO 4.8's Socket that pushTo uses to write one encoded packet to many
 * sockets, as its broadcast does (not in its public types); the channel e2e specs cover them.
 */
interface SocketInternals {
  nsp: { _ids: number };
  acks: TransientMap<number, (...args: unknown[]) => void>;
  client: {
    encoder: { encode(packet: { type: number; nsp: string; id: number; data: unknown[] }): unknown[] };
    _packet(packets: unknown[], opts: { preEncoded: boolean; compress: boolean }): void;
  };
}

/** One push's ack callback, made outside pushTo so that it keeps no reference to the payload. */
function awaitAck(timeoutMs: number, onOutcome: (outcome: PushOutcome) => void, onLateAck?: () => void): () => void {
  const started = performance.now();
  // Until the outcome is reported: an ack after it (after the timeout) is a late one.
  let pending = true;
  const timer = setTimeout(() => {
    pending = false;
    onOutcome({ acked: false });
  }, timeoutMs);
  return () => {
    if (!pending) return onLateAck?.();
    pending = false;
    clearTimeout(timer);
    onOutcome({ acked: true, latencyMs: performance.now() - started });
  };
}
