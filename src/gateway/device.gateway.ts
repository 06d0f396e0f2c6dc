import { Logger } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { randomUUID } from 'node:crypto';
import { DeviceAuthError, DeviceClaims, DeviceTokenVerifier } from '../auth/device-token.verifier';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MAX_REPORTED_RTT_MS, readClientPayload } from '../channel/client-events';
import { DeviceChannel, joinedTopics, rooms } from '../channel/device-channel';
import { Ack, AuthAck, DeviceServer, DeviceSocket, errorAck, HeartbeatAck, OkAck, TopicsAck } from '../channel/socket-events';
import { PushRegistrationStore } from '../push/push-registration.store';
import { readPushTarget } from '../push/push-target';
import { NETWORK_KEY } from '../common/patterns';
import { guardPackets } from './packet-guard';
import { SessionService } from './session.service';
import { TokenExpiry } from './token-expiry.service';
import { isTopicAllowed, planSubscribe } from './topic-policy';

@WebSocketGateway()
export class DeviceGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(DeviceGateway.name);

  constructor(
    private readonly sessions: SessionService,
    private readonly channel: DeviceChannel,
    private readonly verifier: DeviceTokenVerifier,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly tokens: TokenExpiry,
    private readonly pushTargets: PushRegistrationStore,
  ) {}

  /** Authenticates in a Socket.IO middleware (guards do not run for handshakes) so refusals reach the client as connect_error. */
  afterInit(server: DeviceServer): void {
    this.channel.attach(server, this.config.instanceId);
    server.use((socket, next) => {
      try {
        const claims = this.verifier.verify((socket.handshake.auth as { token?: unknown } | undefined)?.token);
        socket.data.session = {
          deviceId: claims.deviceId,
          userId: claims.userId,
          sessionId: randomUUID(),
          platform: claims.platform,
          topics: claims.topics,
          interval: this.config.heartbeat.interval,
          network: readNetwork(socket.handshake.auth),
          rtt: readRtt(socket.handshake.auth),
          recorded: {},
          beatsAtInterval: 0,
          tokenExpiresAt: claims.expiresAt,
          tokenDeadline: this.tokens.deadlineFor(claims.expiresAt),
        };
        next();
      } catch (err) {
        const code = err instanceof DeviceAuthError ? err.code : 'invalid_token';
        this.metrics.connections.inc({ result: 'refused', reason: code });
        next(Object.assign(new Error('unauthorized'), { data: { code, message: (err as Error).message } }));
      }
    });
  }

  handleConnection(socket: DeviceSocket): void {
    const session = socket.data.session;
    const limits = {
      maxPayloadBytes: this.config.maxPayloadBytes,
      eventsPerSecond: this.config.socketEventsPerSecond,
      maxBufferedBytes: this.config.socketMaxBufferedBytes,
    };
    guardPackets(socket, limits, this.clock, this.channel, this.metrics, {
      ranOut: () => this.tokens.ranOut(session),
      end: () => void this.tokens.end(socket),
    });
    this.channel.register(socket);
    // The busiest event skips Nest's per-message pipeline (execution context, parameter pipes,
    // exception zone, and the garbage they make): a plain listener with the adapter's payload and
    // ack mapping. The packet guard (socket.use) still runs first, as for every event.
    socket.on('heartbeat', (...args: unknown[]) => {
      const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
      this.heartbeat(socket, args.length > 1 ? args : args[0]).then(
        (reply) => ack?.(reply),
        (err: Error) => this.logger.error(err.stack ?? err.message),
      );
    });
    this.channel.onOtherTraffic(socket, () => this.sessions.otherTraffic(session));
    this.tokens.track(session);
    session.ready = this.sessions.start(session, () => this.channel.starting(socket)).then(
      (ready) => {
        this.metrics.connections.inc({ result: 'accepted', reason: 'ok' });
        this.metrics.connectedDevices.inc();
        this.channel.ready(socket, ready);
        return true;
      },
      (err: Error) => {
        // Presence could not be recorded (Redis down): close the transport so the client retries.
        this.metrics.connections.inc({ result: 'refused', reason: 'unavailable' });
        this.logger.warn(`session of ${session.deviceId} not started: ${err.message}`);
        socket.conn.close();
        return false;
      },
    );
  }

  async handleDisconnect(socket: DeviceSocket): Promise<void> {
    const session = socket.data.session;
    if (!session) return;
    this.channel.unregister(socket);
    this.tokens.forget(session);
    if (!(await session.ready)) return;
    this.metrics.connectedDevices.dec();
    await this.sessions.end(session).catch((err: Error) => {
      // Retried by SessionService until it lands or the presence TTL retires it; nothing else is lost.
      this.logger.warn(`presence of ${session.deviceId} not removed on disconnect (retried): ${err.message}`);
    });
  }

  /** Bound in handleConnection (see there), not with @SubscribeMessage. */
  async heartbeat(socket: DeviceSocket, payload: unknown): Promise<Ack<HeartbeatAck>> {
    const session = socket.data.session;
    if (!(await session.ready)) return errorAck('unavailable', 'session not started');
    return this.sessions.heartbeat(session, payload);
  }

  @SubscribeMessage('subscribe')
  async subscribe(@ConnectedSocket() socket: DeviceSocket, @MessageBody() payload: unknown): Promise<Ack<TopicsAck>> {
    const request = readClientPayload('subscribe', payload);
    if (typeof request === 'string') return errorAck('invalid_payload', request);
    const plan = planSubscribe(socket.data.session.topics, joinedTopics(socket), request.topics);
    if (!Array.isArray(plan)) return plan;
    await socket.join(plan.map(rooms.topic));
    return { ok: true, topics: joinedTopics(socket) };
  }

  @SubscribeMessage('unsubscribe')
  async unsubscribe(@ConnectedSocket() socket: DeviceSocket, @MessageBody() payload: unknown): Promise<Ack<TopicsAck>> {
    const request = readClientPayload('unsubscribe', payload);
    if (typeof request === 'string') return errorAck('invalid_payload', request);
    for (const t of request.topics) await socket.leave(rooms.topic(t));
    return { ok: true, topics: joinedTopics(socket) };
  }

  /**
   * Moves the session onto a fresh token of the same user and device. Its `topics` claim is the
   * grant from now on: joined topics it no longer allows are left at once (a refresh is how a
   * backend narrows what a long-lived session may read), and the ack lists what is still held.
   */
  @SubscribeMessage('auth')
  async auth(@ConnectedSocket() socket: DeviceSocket, @MessageBody() payload: unknown): Promise<Ack<AuthAck>> {
    const session = socket.data.session;
    const request = readClientPayload('auth', payload);
    const refuse = (code: 'invalid_payload' | 'invalid_token' | 'token_expired' | 'identity_mismatch', message: string) => {
      this.metrics.tokenRefreshes.inc({ result: code });
      return errorAck(code, message);
    };
    if (typeof request === 'string') return refuse('invalid_payload', request);
    let claims: DeviceClaims;
    try {
      claims = this.verifier.verify(request.token);
    } catch (err) {
      const code = err instanceof DeviceAuthError && err.code === 'token_expired' ? 'token_expired' : 'invalid_token';
      return refuse(code, (err as Error).message);
    }
    if (claims.userId !== session.userId || claims.deviceId !== session.deviceId) {
      return refuse('identity_mismatch', 'the token names another user or device than this session');
    }
    this.tokens.renew(session, claims.expiresAt);
    session.topics = claims.topics;
    for (const topic of joinedTopics(socket)) if (!isTopicAllowed(claims.topics, topic)) await socket.leave(rooms.topic(topic));
    this.metrics.tokenRefreshes.inc({ result: 'ok' });
    return { ok: true, tokenExpiresAt: claims.expiresAt, topics: joinedTopics(socket) };
  }

  @SubscribeMessage('register_push')
  registerPush(@ConnectedSocket() socket: DeviceSocket, @MessageBody() payload: unknown): Promise<Ack<OkAck>> {
    return registerPush(socket, payload, { store: this.pushTargets, config: this.config, clock: this.clock, logger: this.logger });
  }

  @SubscribeMessage('unregister_push')
  async unregisterPush(@ConnectedSocket() socket: DeviceSocket, @MessageBody() payload: unknown): Promise<Ack<OkAck>> {
    const request = readClientPayload('unregister_push', payload);
    if (typeof request === 'string') return errorAck('invalid_payload', request);
    if (!(await socket.data.session.ready)) return errorAck('unavailable', 'session not started');
    try {
      await this.pushTargets.unregister(socket.data.session.deviceId);
    } catch {
      return errorAck('unavailable', 'the store did not answer; retry');
    }
    return { ok: true };
  }
}

/** Where else the device can be reached (native push): one registration per device, a new one replaces it. */
async function registerPush(
  socket: DeviceSocket,
  payload: unknown,
  deps: { store: PushRegistrationStore; config: AppConfig; clock: Clock; logger: Logger },
): Promise<Ack<OkAck>> {
  const session = socket.data.session;
  const request = readClientPayload('register_push', payload);
  if (typeof request === 'string') return errorAck('invalid_push_target', request);
  const registration = readPushTarget(request, deps.config.webPushEndpointHosts);
  if (typeof registration === 'string') return errorAck('invalid_push_target', registration);
  if (!(await session.ready)) return errorAck('unavailable', 'session not started');
  try {
    if (!(await deps.store.register(session.deviceId, registration, deps.clock.now()))) return errorAck('unavailable', 'the device record is gone; reconnect');
  } catch (err) {
    deps.logger.warn(`push registration of ${session.deviceId} not stored: ${(err as Error).message}`);
    return errorAck('unavailable', 'the store did not answer; retry');
  }
  return { ok: true };
}

/** `auth.rtt` is a hint for the first TTL, read like a heartbeat's `rtt`; an unusable value is ignored, not refused. */
function readRtt(auth: unknown): number | undefined {
  const rtt = (auth as { rtt?: unknown } | undefined)?.rtt;
  return typeof rtt === 'number' && rtt >= 0 && rtt <= MAX_REPORTED_RTT_MS ? rtt : undefined;
}

/** `auth.network` is a hint for smart heartbeats; an unusable value is ignored, not refused. */
function readNetwork(auth: unknown): string | undefined {
  const network = (auth as { network?: unknown } | undefined)?.network;
  return NETWORK_KEY.test(network) ? network : undefined;
}
