import { INestApplicationContext, Logger } from '@nestjs/common';
import { createAdapter } from '@socket.io/redis-adapter';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import { AppConfig } from '../config/app-config';
import { RedisConnection } from '../redis/redis-connection';
import { forgivingClient } from '../redis/forgiving-client';
import { DeviceChannel } from './device-channel';

/** Frames larger than this close the offending connection (Socket.IO's own guard). */
export const MAX_FRAME_BYTES = 64 * 1024;

/**
 * Socket.IO server options derived from the configuration. The engine.io ping is stretched to the
 * longest heartbeat interval allowed: liveness is the application heartbeat's job, and a 25 s
 * transport ping would wake a phone's radio far more often than a tuned heartbeat does.
 */
export class GatewayIoAdapter extends IoAdapter {
  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const config = this.app.get(AppConfig);
    const channel = this.app.get(DeviceChannel);
    const redis = this.app.get(RedisConnection);
    const server = super.createIOServer(port, {
      ...options,
      path: '/socket.io',
      pingInterval: config.heartbeat.max,
      pingTimeout: 20_000,
      maxHttpBufferSize: MAX_FRAME_BYTES,
      cors: { origin: true, credentials: true },
      // While draining, refuse new handshakes at the HTTP level: the client's reconnection loop
      // keeps trying (unlike a middleware refusal) and lands on another instance.
      allowRequest: (_req, callback) => callback(channel.isDraining ? 'server draining' : null, !channel.isDraining),
    } as ServerOptions);
    if (redis.pub && redis.sub) {
      // Rooms span instances: a push, a takeover or a topic lookup reaches sockets on any of them.
      const logger = new Logger('RedisAdapter');
      const warn = (err: Error) => logger.warn(`adapter command failed (Redis unavailable?): ${err.message}`);
      const [pub, sub] = [forgivingClient(redis.pub, warn), forgivingClient(redis.sub, warn)];
      server.adapter(createAdapter(pub, sub, { key: `${config.redisPrefix}socket.io`, requestsTimeout: 3_000 }));
    }
    return server;
  }
}
