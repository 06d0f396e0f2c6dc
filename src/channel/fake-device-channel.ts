import { SessionRef } from '../presence/presence.types';
import { DeviceChannel, PushOutcome } from './device-channel';
import { CloseReason, DeviceSession, DeviceSocket, NotificationPayload, ReadyPayload } from './socket-events';

type ChannelSurface =
  | 'close'
  | 'push'
  | 'pushTo'
  | 'ready'
  | 'onSessionReady'
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
  /** The socket it was emitted on (pushTo), or undefined for a push by device id. */
  socket?: DeviceSocket;
  /** The device acked; resolves once everything that ack set off has run (see idle()). */
  ack(latencyMs?: number): Promise<void>;
  /** The ack timeout passed without a receipt; resolves like ack(). */
  noAck(): Promise<void>;
}

/**
 * DeviceChannel without Socket.IO, for service specs: it records what the services asked of the
 * channel (closes, pushes, ready payloads) and lets the test play the devices. For tests only.
 */
export class FakeDeviceChannel implements Pick<DeviceChannel, ChannelSurface> {
  readonly closed: { sessions: SessionRef[]; reason: CloseReason }[] = [];
  readonly pushes: RecordedPush[] = [];
  readonly readied: { socket: DeviceSocket; payload: ReadyPayload }[] = [];
  /** topic -> subscribed device ids, as topicDevices() answers. */
  readonly topics = new Map<string, string[]>();
  private readonly local = new Map<string, SessionRef>();
  private readonly readyListeners: ((socket: DeviceSocket) => void)[] = [];
  private draining = false;

  constructor(readonly instanceId = 'gw-test') {}

  /** A socket of this session is now connected here; returns a socket that carries it. */
  connect(ref: Omit<SessionRef, 'instanceId'>): DeviceSocket {
    this.local.set(ref.sessionId, { ...ref, instanceId: this.instanceId });
    const session: DeviceSession = { ...ref, topics: [], interval: 0, beatsAtInterval: 0 };
    return { id: `socket-${ref.sessionId}`, data: { session } } as unknown as DeviceSocket;
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

  ready(socket: DeviceSocket, payload: ReadyPayload): void {
    this.readied.push({ socket, payload });
    for (const listener of this.readyListeners) listener(socket);
  }

  close(sessions: readonly SessionRef[], reason: CloseReason): void {
    this.closed.push({ sessions: [...sessions], reason });
  }

  push(deviceId: string, payload: NotificationPayload, timeoutMs: number): Promise<PushOutcome> {
    return this.record(deviceId, payload, timeoutMs);
  }

  pushTo(socket: DeviceSocket, payload: NotificationPayload, timeoutMs: number): Promise<PushOutcome> {
    return this.record(socket.data.session.deviceId, payload, timeoutMs, socket);
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
   * did all they can without a new ack. It waits for no timer, so it is not a sleep.
   */
  idle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  private record(deviceId: string, payload: NotificationPayload, timeoutMs: number, socket?: DeviceSocket): Promise<PushOutcome> {
    return new Promise((resolve) => {
      this.pushes.push({
        deviceId,
        payload,
        timeoutMs,
        socket,
        ack: (latencyMs = 5) => {
          resolve({ acked: true, latencyMs });
          return this.idle();
        },
        noAck: () => {
          resolve({ acked: false });
          return this.idle();
        },
      });
    });
  }
}
