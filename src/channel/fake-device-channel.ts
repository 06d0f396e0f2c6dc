import { SessionRef } from '../presence/presence.types';
import { DeviceChannel, InboundDelivery, PushOutcome } from './device-channel';
import { CloseReason, DeviceSession, DeviceSocket, NotificationPayload, ReadyPayload } from './socket-events';

type ChannelSurface =
  | 'close'
  | 'closeSocket'
  | 'isOpen'
  | 'bufferedBytes'
  | 'pushTo'
  | 'localSocket'
  | 'localSessionSocket'
  | 'onDeliver'
  | 'onRecheck'
  | 'deliverRemote'
  | 'recheckRemote'
  | 'ready'
  | 'onSessionReady'
  | 'onSessionStarting'
  | 'withSharedEncoding'
  | 'starting'
  | 'topicDevices'
  | 'drain'
  | 'localSessions'
  | 'localCount'
  | 'isDraining';

/** One emitted notification; the test decides whether the device acks it. */
export interface RecordedPush {
  deviceId: string;
  payload: NotificationPayload;
  timeoutMs: number;
  /** The socket it was emitted on. */
  socket: DeviceSocket;
  /** The device acked; resolves once everything that ack set off has run (see idle()). */
  ack(latencyMs?: number): Promise<void>;
  /** The ack timeout passed without a receipt; resolves like ack(). */
  noAck(): Promise<void>;
  /** The device acked after noAck(): runs pushTo's onLateAck; resolves like ack(). */
  lateAck(): Promise<void>;
}

/**
 * DeviceChannel without Socket.IO, for service specs: it records what the services asked of the
 * channel (closes, pushes, ready payloads) and lets the test play the devices. For tests only.
 */
export class FakeDeviceChannel implements Pick<DeviceChannel, ChannelSurface> {
  readonly closed: { sessions: SessionRef[]; reason: CloseReason }[] = [];
  /** Sessions closed here with closeSocket (a slow consumer, say), by session id. */
  readonly closedSockets: { sessionId: string; reason: CloseReason }[] = [];
  /** Deliveries and rechecks handed to other instances. */
  readonly remote: { instanceId: string; delivery: InboundDelivery }[] = [];
  readonly rechecks: string[][] = [];
  /** Bytes each socket's transport holds, as the test sets them (default 0). */
  readonly buffered = new Map<DeviceSocket, number>();
  readonly pushes: RecordedPush[] = [];
  readonly readied: { socket: DeviceSocket; payload: ReadyPayload }[] = [];
  /** topic -> subscribed device ids, as topicDevices() answers. */
  readonly topics = new Map<string, string[]>();
  private readonly local = new Map<string, SessionRef>();
  private readonly sockets = new Map<string, DeviceSocket>();
  private readonly readyListeners: ((socket: DeviceSocket) => void)[] = [];
  private readonly startingListeners: ((socket: DeviceSocket) => void)[] = [];
  private deliverListener?: (delivery: InboundDelivery) => void;
  private recheckListener?: (deviceIds: string[]) => void;
  private draining = false;

  constructor(readonly instanceId = 'gw-test') {}

  /**
   * A socket of this session is now connected here; returns a socket that carries it. Its token
   * never runs out unless the test says when (`token`, epoch ms).
   */
  connect(ref: Omit<SessionRef, 'instanceId'>, token = { expiresAt: Number.MAX_SAFE_INTEGER, deadline: Number.MAX_SAFE_INTEGER }): DeviceSocket {
    this.local.set(ref.sessionId, { ...ref, instanceId: this.instanceId });
    const session: DeviceSession = {
      ...ref,
      topics: [],
      interval: 0,
      recorded: {},
      beatsAtInterval: 0,
      tokenExpiresAt: token.expiresAt,
      tokenDeadline: token.deadline,
    };
    const onDisconnect: ((this: unknown) => void)[] = [];
    const socket = {
      id: `socket-${ref.sessionId}`,
      data: { session },
      connected: true,
      on: (event: string, listener: (this: unknown) => void) => event === 'disconnect' && onDisconnect.push(listener),
      /** The test: this socket went away (listeners are called with the socket as `this`, as Socket.IO does). */
      disconnectForTest: () => {
        socket.connected = false;
        onDisconnect.forEach((l) => l.call(socket));
      },
    };
    this.sockets.set(ref.deviceId, socket as unknown as DeviceSocket);
    return socket as unknown as DeviceSocket;
  }

  /** The test: a socket went away (as Socket.IO's disconnect would tell). */
  disconnect(socket: DeviceSocket): void {
    (socket as unknown as { disconnectForTest(): void }).disconnectForTest();
    if (this.sockets.get(socket.data.session.deviceId) === socket) this.sockets.delete(socket.data.session.deviceId);
  }

  get localCount(): number {
    return this.local.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  localSessions(): SessionRef[] {
    return [...this.local.values()];
  }

  onSessionReady(listener: (socket: DeviceSocket) => void): void {
    this.readyListeners.push(listener);
  }

  onSessionStarting(listener: (socket: DeviceSocket) => void): void {
    this.startingListeners.push(listener);
  }

  starting(socket: DeviceSocket): void {
    for (const listener of this.startingListeners) listener(socket);
  }

  /** Encoding is the real channel's concern: here the pushes simply run. */
  withSharedEncoding(_payload: NotificationPayload, send: () => void): void {
    send();
  }

  ready(socket: DeviceSocket, payload: ReadyPayload): void {
    this.readied.push({ socket, payload });
    for (const listener of this.readyListeners) listener(socket);
  }

  close(sessions: readonly SessionRef[], reason: CloseReason): void {
    this.closed.push({ sessions: [...sessions], reason });
  }

  closeSocket(socket: DeviceSocket, reason: CloseReason): void {
    socket.data.session.closing ??= reason;
    this.closedSockets.push({ sessionId: socket.data.session.sessionId, reason });
  }

  isOpen(socket: DeviceSocket): boolean {
    return socket.connected && !socket.data.session.closing;
  }

  bufferedBytes(socket: DeviceSocket): number {
    return this.buffered.get(socket) ?? 0;
  }

  localSocket(deviceId: string): DeviceSocket | undefined {
    const socket = this.sockets.get(deviceId);
    return socket && this.isOpen(socket) ? socket : undefined;
  }

  localSessionSocket(sessionId: string): DeviceSocket | undefined {
    return [...this.sockets.values()].find((socket) => socket.data.session.sessionId === sessionId);
  }

  onDeliver(listener: (delivery: InboundDelivery) => void): void {
    this.deliverListener = listener;
  }

  onRecheck(listener: (deviceIds: string[]) => void): void {
    this.recheckListener = listener;
  }

  deliverRemote(instanceId: string, delivery: InboundDelivery): void {
    this.remote.push({ instanceId, delivery });
  }

  recheckRemote(deviceIds: string[]): void {
    this.rechecks.push([...deviceIds]);
  }

  /** The test: another instance routed a delivery here. */
  receiveDelivery(delivery: InboundDelivery): void {
    this.deliverListener?.(delivery);
  }

  /** The test: another instance asked for a recheck. */
  receiveRecheck(deviceIds: string[]): void {
    this.recheckListener?.(deviceIds);
  }

  pushTo(socket: DeviceSocket, payload: NotificationPayload, timeoutMs: number, onOutcome: (outcome: PushOutcome) => void, onLateAck?: () => void): void {
    this.record(socket.data.session.deviceId, payload, timeoutMs, socket, onOutcome, onLateAck);
  }

  async topicDevices(topic: string): Promise<string[]> {
    return this.topics.get(topic) ?? [];
  }

  drain(): SessionRef[] {
    this.draining = true;
    return this.localSessions();
  }

  /**
   * Resolves once the microtasks queued so far have run: with in-memory stores, once the services
   * did all they can without a new ack, acks they record at the end of the turn included (two
   * turns). It waits for no timer, so it is not a sleep.
   */
  idle(): Promise<void> {
    return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
  }

  private record(deviceId: string, payload: NotificationPayload, timeoutMs: number, socket: DeviceSocket, onOutcome: (outcome: PushOutcome) => void, onLateAck?: () => void): void {
    // The outcome comes once, as the real channel's does.
    let settled = false;
    const settle = (outcome: PushOutcome) => {
      if (settled) return;
      settled = true;
      onOutcome(outcome);
    };
    this.pushes.push({
      deviceId,
      payload,
      timeoutMs,
      socket,
      ack: (latencyMs = 5) => {
        settle({ acked: true, latencyMs });
        return this.idle();
      },
      noAck: () => {
        settle({ acked: false });
        return this.idle();
      },
      lateAck: () => {
        onLateAck?.();
        return this.idle();
      },
    });
  }
}
