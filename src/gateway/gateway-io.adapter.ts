import { INestApplicationContext, Logger } from '@nestjs/common';
import { createAdapter } from '@socket.io/redis-adapter';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { isObservable, Observable } from 'rxjs';
import type { Server, ServerOptions, Socket } from 'socket.io';
import { AppConfig } from '../config/app-config';
import { RedisConnection } from '../redis/redis-connection';
import { forgivingClient } from '../redis/forgiving-client';
import { DeviceChannel } from '../channel/device-channel';

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

  /**
   * Binds each @SubscribeMessage handler as a plain listener. IoAdapter's version builds an RxJS
   * chain per event per socket (fromEvent, mergeMap, takeUntil a shared disconnect stream) that
   * lives as long as the socket: about 16 KB of heap per connection with three handlers, more than
   * Socket.IO's own socket (measured with `npm run bench -- --heap-snapshots`). The behaviour is
   * IoAdapter's: the same payload/ack mapping, handlers still run through Nest's context (pipes,
   * filters), a nil result is not acked, `{ event, data }` is emitted, other results are acked.
   * Socket.IO drops the listeners with the socket.
   */
  override bindMessageHandlers(socket: Socket, handlers: MessageMappingProperties[], transform: (data: unknown) => Observable<unknown>): void {
    for (const { message, callback, isAckHandledManually } of handlers) {
      socket.on(message as string, (...args: unknown[]) => {
        const ack = typeof args.at(-1) === 'function' ? (args.pop() as (response: unknown) => void) : undefined;
        const data = args.length > 1 ? args : args[0];
        const respond = (response: unknown) => {
          if (response === null || response === undefined) return;
          const { event, data: eventData } = response as { event?: string; data?: unknown };
          if (event) socket.emit(event, eventData);
          else if (!isAckHandledManually && ack) ack(response);
        };
        const fail = (err: unknown) => this.logger.error(err);
        let result: unknown;
        try {
          result = callback(data, ack);
        } catch (err) {
          return fail(err);
        }
        if (result instanceof Promise) {
          result.then((value: unknown) => (isObservable(value) ? value.subscribe({ next: respond, error: fail }) : respond(value)), fail);
        } else {
          transform(result).subscribe({ next: respond, error: fail });
        }
      });
    }
  }
}
