import { INestApplicationContext, Logger } from '@nestjs/common';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Cluster } from 'ioredis';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, ServerOptions, Socket } from 'socket.io';
import type { Adapter } from 'socket.io-adapter';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { addressKey, clientAddress, trustFn } from '../http/client-address';
import { HandshakeLimiter } from '../http/handshake-limiter';
import { corsOrigin, originAllowed } from '../http/origins';
import { MetricsService } from '../metrics/metrics.service';
import { RedisConnection } from '../redis/redis-connection';
import { forgivingClient } from '../redis/forgiving-client';
import { DeviceChannel } from '../channel/device-channel';

/** Frames larger than this close the offending connection (Socket.IO's own guard). */
export const MAX_FRAME_BYTES = 64 * 1024;

/**
 * The engine.io ping comes every TRANSPORT_PING_FACTOR x HEARTBEAT_MAX_MS. Liveness is the
 * application heartbeat's job, and a 25 s transport ping would wake a phone's radio far more often
 * than a tuned heartbeat does. It is also kept well above every interval a device may tune to: a
 * ping that lands inside a heartbeat gap refreshes the NAT mapping and would make a gap longer
 * than the NAT's idle timeout look survivable (measured: a 30 s ping let a device believe in 13.5 s
 * behind a 12 s NAT). Neither the SDK nor the gateway counts a gap with other traffic as evidence.
 */
export const TRANSPORT_PING_FACTOR = 2;

/** Socket.IO server options derived from the configuration. */
export class GatewayIoAdapter extends IoAdapter {
  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const config = this.app.get(AppConfig);
    const redis = this.app.get(RedisConnection);
    const origins = config.http.corsOrigins;
    const server = super.createIOServer(port, {
      ...options,
      path: '/socket.io',
      pingInterval: TRANSPORT_PING_FACTOR * config.heartbeat.max,
      pingTimeout: 20_000,
      maxHttpBufferSize: MAX_FRAME_BYTES,
      // Allowed origins only, and no credentials: devices authenticate with a token, not cookies.
      cors: { origin: (origin: string | undefined, cb: (err: Error | null, allow: string | false) => void) => cb(null, corsOrigin(origins, origin)) },
      allowRequest: this.handshakeCheck(config),
    } as ServerOptions);
    const adapter = redisAdapter(redis, config.redisPrefix);
    if (adapter) server.adapter(adapter);
    return server;
  }

  /**
   * Runs before every new engine.io session, polling and WebSocket alike (a WebSocket-only client
   * never sends a polling request), and before the Socket.IO middleware that checks the token.
   * Refusals here are HTTP-level (a polling handshake gets 403 with `{ code, message }`; engine.io
   * answers a refused upgrade with 400 and the message as body), so a Socket.IO client sees
   * `connect_error` and its reconnection loop keeps trying with backoff: right for a drain (it lands
   * on another instance) and for a rate limit, and harmless for an origin that stays refused.
   */
  private handshakeCheck(config: AppConfig): ServerOptions['allowRequest'] {
    const channel = this.app.get(DeviceChannel);
    const metrics = this.app.get(MetricsService);
    const rate = config.http.handshakesPerAddressPerSecond;
    const limiter = rate > 0 ? new HandshakeLimiter(rate, this.app.get(Clock)) : undefined;
    const trust = trustFn(config.http.trustProxy);
    return (req, callback) => {
      if (channel.isDraining) return callback('server draining', false);
      if (!originAllowed(config.http.corsOrigins, req.headers.origin)) {
        metrics.connections.inc({ result: 'refused', reason: 'origin' });
        // Lets a refused page read why (a bare 403 would look like a CORS failure); nothing else
        // is readable from here, and no credentials are allowed.
        responseOf(req)?.setHeader('Access-Control-Allow-Origin', '*');
        return callback('origin not allowed', false);
      }
      if (limiter && !limiter.take(addressKey(clientAddress(req, trust)))) {
        metrics.connections.inc({ result: 'refused', reason: 'handshake_rate' });
        return callback('too many handshakes from this address', false);
      }
      callback(null, true);
    };
  }

  /**
   * DeviceGateway binds its connections and events itself, as plain listeners shared by every
   * socket (see there): Nest's binding costs a bound handler per event per socket, RxJS subjects
   * per connection and a disconnect listener of its own. A @SubscribeMessage handler would
   * silently bring that back, so one is refused where Nest binds it.
   */
  override bindMessageHandlers(_socket: Socket, handlers: MessageMappingProperties[]): void {
    if (handlers.length > 0) {
      throw new Error(`@SubscribeMessage('${String(handlers[0]!.message)}'): device events are bound in DeviceGateway, not by Nest`);
    }
  }

  /** No gateway here implements handleDisconnect (DeviceGateway listens itself), so Nest's listener would only cost memory. */
  override bindClientDisconnect(): void {}
}

/**
 * The Socket.IO adapter over Redis, none in embedded mode. Rooms span instances: a topic lookup
 * (fetchSockets) and a recheck reach every instance. Deliveries and closes do not use the adapter:
 * they go to one instance's mailbox (InstanceMailbox).
 */
export function redisAdapter(redis: RedisConnection, prefix: string): ((nsp: unknown) => Adapter) | undefined {
  if (!redis.pub || !redis.sub) return undefined;
  const logger = new Logger('RedisAdapter');
  const warn = (err: Error) => logger.warn(`adapter command failed (Redis unavailable?): ${err.message}`);
  const [pub, sub] = [forgivingClient(redis.pub, warn), forgivingClient(redis.sub, warn)];
  if (redis.sub instanceof Cluster) {
    // Sharded pub/sub (Redis 7): a message stays on the master of its channel's slot instead of
    // being copied to every node over the cluster bus. 'dynamic' gives each topic room its own
    // channel, so a topic lookup is heard by the instances holding that topic. No hash tag in the
    // prefix: channels spread over the masters by name.
    return createShardedAdapter(pub, sub, { channelPrefix: `${prefix}sio`, subscriptionMode: 'dynamic' });
  }
  return createAdapter(pub, sub, { key: `${prefix}socket.io`, requestsTimeout: 3_000 });
}

/** engine.io hangs the response on a polling request (not on a WebSocket upgrade). */
function responseOf(req: IncomingMessage): ServerResponse | undefined {
  const res: unknown = (req as IncomingMessage & { res?: unknown }).res;
  return res instanceof ServerResponse ? res : undefined;
}
