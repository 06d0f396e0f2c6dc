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
import { DeviceAuthError, DeviceTokenVerifier } from '../auth/device-token.verifier';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { readClientPayload } from '../channel/client-events';
import { DeviceChannel, joinedTopics, rooms } from '../channel/device-channel';
import { Ack, DeviceServer, DeviceSocket, errorAck, HeartbeatAck, TopicsAck } from '../channel/socket-events';
import { NETWORK_KEY } from '../common/patterns';
import { guardPackets } from './packet-guard';
import { SessionService } from './session.service';
import { planSubscribe } from './topic-policy';

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
          beatsAtInterval: 0,
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
    guardPackets(socket, limits, this.clock, this.channel, this.metrics);
    this.channel.register(socket);
    session.ready = this.sessions.start(session).then(
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
    if (!(await session.ready)) return;
    this.metrics.connectedDevices.dec();
    await this.sessions.end(session).catch((err: Error) => {
      // The presence TTL will retire it; nothing else is lost.
      this.logger.warn(`presence of ${session.deviceId} not removed on disconnect: ${err.message}`);
    });
  }

  @SubscribeMessage('heartbeat')
  async heartbeat(@ConnectedSocket() socket: DeviceSocket, @MessageBody() payload: unknown): Promise<Ack<HeartbeatAck>> {
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
}

/** `auth.network` is a hint for smart heartbeats; an unusable value is ignored, not refused. */
function readNetwork(auth: unknown): string | undefined {
  const network = (auth as { network?: unknown } | undefined)?.network;
  return NETWORK_KEY.test(network) ? network : undefined;
}
