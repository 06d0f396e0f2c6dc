import { Injectable } from '@nestjs/common';
import { SessionRef } from '../presence/presence.types';
import { DeviceServer, DeviceSocket, NotificationPayload, sessionRef } from './socket-events';

export const rooms = {
  device: (deviceId: string) => `device:${deviceId}`,
  user: (userId: string) => `user:${userId}`,
  session: (sessionId: string) => `session:${sessionId}`,
  topic: (topic: string) => `topic:${topic}`,
};

/** Server-side event telling the instance that owns them to close expired sessions. */
const EXPIRE_EVENT = 'push-gateway:expire';

export type PushOutcome = { acked: true; latencyMs: number } | { acked: false };

/**
 * The Socket.IO side of the gateway: the only class that emits to devices or closes their sockets.
 * Targets are rooms, so the same calls reach sockets on other instances once the Redis adapter is
 * attached. It holds no policy.
 */
@Injectable()
export class DeviceChannel {
  private server?: DeviceServer;
  private readonly local = new Map<string, DeviceSocket>();
  /** deviceId -> its socket here, for emits that need no other instance. */
  private readonly localDevices = new Map<string, DeviceSocket>();
  private draining = false;
  private instanceId = '';

  attach(server: DeviceServer, instanceId: string): void {
    this.server = server;
    this.instanceId = instanceId;
    (server as unknown as { on(e: string, l: (ids: string[]) => void): void }).on(EXPIRE_EVENT, (ids) => this.closeLocal(ids));
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

  /** Tells the replaced session why and closes it for good: the client must not reconnect by itself. */
  replace(sessionId: string): void {
    const room = rooms.session(sessionId);
    this.io.to(room).emit('session_replaced', { sessionId, reason: 'new_session' });
    this.io.in(room).disconnectSockets(true);
  }

  /** Closes sessions an operator ended: `io server disconnect` on the client, no automatic reconnect. */
  kick(sessionId: string): void {
    this.io.in(rooms.session(sessionId)).disconnectSockets(true);
  }

  /**
   * Closes the transport of sessions whose presence expired, here or on the instance that holds
   * them. The client sees `transport close` and reconnects by itself once it is alive again,
   * starting a fresh session.
   */
  expire(sessions: readonly SessionRef[]): void {
    const remote = sessions.filter((s) => s.instanceId !== this.instanceId).map((s) => s.sessionId);
    this.closeLocal(sessions.filter((s) => s.instanceId === this.instanceId).map((s) => s.sessionId));
    if (remote.length) {
      // Best effort: an instance that is gone has no sockets left to close.
      try {
        (this.io as unknown as { serverSideEmit(e: string, ids: string[]): void }).serverSideEmit(EXPIRE_EVENT, remote);
      } catch {
        // the in-memory adapter (one instance) has no other instances to tell
      }
    }
  }

  private closeLocal(sessionIds: readonly string[]): void {
    for (const id of sessionIds) this.local.get(id)?.conn.close();
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
  drain(instanceId: string): SessionRef[] {
    this.draining = true;
    const sessions = this.localSessions();
    for (const socket of this.local.values()) {
      socket.emit('server_draining', { instanceId, reconnect: true });
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
