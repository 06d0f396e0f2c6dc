import { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import { AppConfig } from '../config/app-config';
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
    return super.createIOServer(port, {
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
  }
}
