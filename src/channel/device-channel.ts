import { Injectable } from '@nestjs/common';
import { SessionRef } from '../presence/presence.types';
import { CloseReason, DeviceServer, DeviceSocket, NotificationPayload, ReadyPayload, sessionRef } from './socket-events';

export const rooms = {
  device: (deviceId: string) => `device:${deviceId}`,
  user: (userId: string) => `user:${userId}`,
  session: (sessionId: string) => `session:${sessionId}`,
  topic: (topic: string) => `topic:${topic}`,
};

const TOPIC_ROOM = rooms.topic('');

/** The topics a socket has joined. */
export function joinedTopics(socket: DeviceSocket): string[] {
  return [...socket.rooms].filter((r) => r.startsWith(TOPIC_ROOM)).map((r) => r.slice(TOPIC_ROOM.length));
}

const CLOSE_EVENT = 'push-gateway:close';

export type PushOutcome = { acked: true; latencyMs: number } | { acked: false };

/**
 * The Socket.IO side of the gateway: the only class that emits to devices or closes their sockets.
 * Sockets on this instance are reached directly; others through the Redis adapter, so the same
 * calls work wherever a device is connected. It holds no policy.
 */
@Injectable()
export class DeviceChannel {
  private server?: DeviceServer;
  private readonly local = new Map<string, DeviceSocket>();
  /** deviceId -> its socket here, for emits that need no other instance. */
  private readonly localDevices = new Map<string, DeviceSocket>();
  private readonly readyListeners: ((socket: DeviceSocket) => void)[] = [];
  private draining = false;
  private instanceId = '';

  attach(server: DeviceServer, instanceId: string): void {
    this.server = server;
    this.instanceId = instanceId;
    server.on(CLOSE_EVENT, (sessionIds, reason) => this.closeLocal(sessionIds, reason));
  }

  get isDraining(): boolean {
    return this.draining;
  }

  register(socket: DeviceSocket): void {
    const s = socket.data.session;
    this.local.set(s.sessionId, socket);
    this.localDevices.set(s.deviceId, socket);
    void socket.join([rooms.device(s.deviceId), rooms.user(s.userId), rooms.session(s.sessionId)]);
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

  /** Tells the device its session is live, then lets the listeners act on it. */
  ready(socket: DeviceSocket, payload: ReadyPayload): void {
    socket.emit('ready', payload);
    for (const listener of this.readyListeners) listener(socket);
  }

  /**
   * Closes sessions, here or on the instance that holds them:
   * - `expired`: presence ran out; the transport closes and the client (`transport close`)
   *   reconnects by itself once it is alive again, starting a fresh session;
   * - `replaced`: another connection of the device took over; `session_replaced`, then
   *   `io server disconnect`, so the client does not reconnect and take it back;
   * - `kicked`: an operator ended it; `io server disconnect`, no automatic reconnect.
   */
  close(sessions: readonly SessionRef[], reason: CloseReason): void {
    const here = sessions.filter((s) => s.instanceId === this.instanceId).map((s) => s.sessionId);
    const remote = sessions.filter((s) => s.instanceId !== this.instanceId).map((s) => s.sessionId);
    this.closeLocal(here, reason);
    if (!remote.length) return;
    try {
      this.io.serverSideEmit(CLOSE_EVENT, remote, reason);
    } catch {
      // The in-memory adapter (one instance) has no other instance to tell. With Redis this is
      // best effort: an instance that is gone has no sockets left to close.
    }
  }

  private closeLocal(sessionIds: readonly string[], reason: CloseReason): void {
    for (const sessionId of sessionIds) {
      const socket = this.local.get(sessionId);
      if (!socket) continue;
      switch (reason) {
        case 'expired':
          socket.conn.close();
          break;
        case 'replaced':
          socket.emit('session_replaced', { sessionId, reason: 'new_session' });
          socket.disconnect(true);
          break;
        case 'kicked':
          socket.disconnect(true);
          break;
      }
    }
  }

  /**
   * Emits one notification to a device, wherever its socket is; resolves on its ack or the timeout.
   * A socket on this instance gets it directly: a room emit with an ack through the Redis adapter
   * costs a PUBSUB NUMSUB and a PUBLISH round trip per device, which is what a topic fan-out to
   * thousands of local devices must not pay. Only devices held elsewhere go through the adapter.
   */
  push(deviceId: string, payload: NotificationPayload, timeoutMs: number): Promise<PushOutcome> {
    const socket = this.localDevices.get(deviceId);
    if (socket?.connected) return this.pushTo(socket, payload, timeoutMs);
    const started = performance.now();
    return new Promise((resolve) => {
      this.io
        .to(rooms.device(deviceId))
        .timeout(timeoutMs)
        .emit('notification', payload, (_err: Error | null, receipts: unknown[]) => {
          resolve(receipts?.length ? { acked: true, latencyMs: performance.now() - started } : { acked: false });
        });
    });
  }

  /** Emits one notification on a given socket (redelivery after connect); resolves on its ack or the timeout. */
  pushTo(socket: DeviceSocket, payload: NotificationPayload, timeoutMs: number): Promise<PushOutcome> {
    const started = performance.now();
    return new Promise((resolve) => {
      socket.timeout(timeoutMs).emit('notification', payload, (err: Error | null) => {
        resolve(err ? { acked: false } : { acked: true, latencyMs: performance.now() - started });
      });
    });
  }

  /** The devices whose sockets are subscribed to a topic now, on every instance. */
  async topicDevices(topic: string): Promise<string[]> {
    const sockets = await this.io.in(rooms.topic(topic)).fetchSockets();
    return [...new Set(sockets.map((s) => s.data.session.deviceId))];
  }

  /** Drain: refuse new handshakes, hint every local device to reconnect elsewhere, close transports. */
  drain(): SessionRef[] {
    this.draining = true;
    const sessions = this.localSessions();
    for (const socket of this.local.values()) {
      socket.emit('server_draining', { instanceId: this.instanceId, reconnect: true });
      // Flush the hint before closing: close() on the engine socket discards what is still buffered.
      setImmediate(() => socket.conn.close());
    }
    return sessions;
  }

  private get io(): DeviceServer {
    if (!this.server) throw new Error('Socket.IO server is not attached yet');
    return this.server;
  }
}
