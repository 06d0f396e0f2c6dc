import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { PresenceStore } from '../presence/presence.store';
import { DeviceChannel } from '../channel/device-channel';
import { InstanceRegistry } from './instance-registry.service';
import { SessionSweeper } from './session-sweeper.service';

/**
 * Graceful shutdown (SIGTERM): runs before Nest closes the HTTP server. New handshakes are refused
 * from here on, every local device gets `server_draining` and its transport is closed (so
 * Socket.IO clients reconnect, to another instance when there is one), and their presence is
 * removed at once instead of lingering until the TTL. Then the listener closes and the drain waits
 * for REST requests already in flight (main.ts bounds all of it with SHUTDOWN_GRACE_MS).
 */
@Injectable()
export class DrainService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DrainService.name);

  constructor(
    private readonly channel: DeviceChannel,
    private readonly store: PresenceStore,
    private readonly sweeper: SessionSweeper,
    private readonly instances: InstanceRegistry,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly http: HttpAdapterHost,
  ) {}

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.sweeper.stop();
    const sessions = this.channel.drain();
    this.logger.log(`draining (${signal ?? 'close'}): ${sessions.length} sessions told to reconnect`);
    // Two independent steps: a failure of one must not skip the other.
    const [presence, registry] = await Promise.allSettled([this.store.disconnect(sessions, this.clock.now(), 'server_shutdown'), this.instances.leave()]);
    if (presence.status === 'rejected') {
      this.logger.warn(`presence not removed on drain, it will expire by TTL: ${(presence.reason as Error).message}`);
    }
    if (registry.status === 'rejected') {
      this.logger.warn(`instance not removed from the registry, it will expire: ${(registry.reason as Error).message}`);
    }
    await this.finishInFlight();
  }

  /**
   * Stops listening and resolves once every HTTP connection has ended: idle keep-alive ones are
   * closed at once, busy ones after their response. Socket.IO's own close() would stop the server
   * without waiting, and the process would exit over requests still being answered.
   */
  private finishInFlight(): Promise<void> {
    const server = this.http.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server?.listening) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
}
