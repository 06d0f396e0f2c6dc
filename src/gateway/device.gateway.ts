import { Logger } from '@nestjs/common';
import { OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import { randomUUID } from 'node:crypto';
import { DeviceAuthError, DeviceClaims, DeviceTokenVerifier } from '../auth/device-token.verifier';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { WarningSummary } from '../logging/warning-summary';
import { ClientEventName, MAX_REPORTED_RTT_MS, readClientPayload } from '../channel/client-events';
import { DeviceChannel, joinedTopics, rooms } from '../channel/device-channel';
import { Ack, AuthAck, DeviceServer, DeviceSession, DeviceSocket, ErrorAck, errorAck, HeartbeatAck, OkAck, TopicsAck } from '../channel/socket-events';
import { PushRegistrationStore } from '../push/push-registration.store';
import { readPushTarget } from '../push/push-target';
import { NETWORK_KEY } from '../common/patterns';
import { guardPackets, PacketLimits, TokenCheck } from './packet-guard';
import { SessionService } from './session.service';
import { TokenExpiry } from './token-expiry.service';
import { isTopicAllowed, planSubscribe } from './topic-policy';

/** What a client event gets: its socket and payload (the ack callback taken off), and its ack comes back. */
type ClientEventHandler = (socket: DeviceSocket, payload: unknown) => Promise<Ack<unknown>>;

/**
 * The device namespace's connections and events are bound here directly, not through Nest's
 * gateway machinery (OnGatewayConnection, @SubscribeMessage). Per connection Nest binds each
 * handler to the socket and keeps the bound functions, pushes the socket through RxJS subjects
 * and hangs its own disconnect listener on it; per event it builds an execution context and runs
 * its parameter pipes. None of that carries our rules (the packet guard screens every event
 * first, and each handler validates its own payload), and it was a measurable part of what a
 * handshake costs over the bare Socket.IO baseline (docs/performance.md, twentieth round). Here
 * each event has one listener shared by every socket (Socket.IO calls it with the socket as
 * `this`), with the ack mapping Nest's adapter had: the payload (or the arguments, when there are
 * several) and the ack callback last. (Nest calls a gateway's methods named handleConnection and
 * handleDisconnect whatever interfaces it declares: these are named otherwise.)
 */
@WebSocketGateway()
export class DeviceGateway implements OnGatewayInit {
  private readonly logger = new Logger(DeviceGateway.name);
  /** Sessions not started / presence not removed: when Redis is down, every device's at once (see WarningSummary). */
  private readonly startFailures = new WarningSummary((m) => this.logger.warn(m), () => this.clock.now());
  private readonly endFailures = new WarningSummary((m) => this.logger.warn(m), () => this.clock.now());
  private readonly limits: PacketLimits;
  private readonly tokenCheck: TokenCheck = {
    ranOut: (socket) => this.tokens.ranOut(socket.data.session),
    end: (socket) => void this.tokens.end(socket),
  };

  constructor(
    private readonly sessions: SessionService,
    private readonly channel: DeviceChannel,
    private readonly verifier: DeviceTokenVerifier,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly tokens: TokenExpiry,
    private readonly pushTargets: PushRegistrationStore,
  ) {
    this.limits = {
      maxPayloadBytes: config.maxPayloadBytes,
      eventsPerSecond: config.socketEventsPerSecond,
      maxBufferedBytes: config.socketMaxBufferedBytes,
    };
  }

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
    this.bindConnections(server);
  }

  /** Each connection gets the packet guard and its session, then the events' shared listeners. */
  private bindConnections(server: DeviceServer): void {
    const handlers: Record<ClientEventName, ClientEventHandler> = {
      heartbeat: (socket, payload) => this.heartbeat(socket, payload),
      subscribe: (socket, payload) => this.subscribe(socket, payload),
      unsubscribe: (socket, payload) => this.unsubscribe(socket, payload),
      auth: (socket, payload) => this.auth(socket, payload),
      register_push: (socket, payload) => registerPush(socket, payload, { store: this.pushTargets, config: this.config, clock: this.clock, logger: this.logger }),
      unregister_push: (socket, payload) => this.unregisterPush(socket, payload),
    };
    const listeners = Object.entries(handlers).map(([event, handle]) => [event as ClientEventName, clientEventListener(event, handle, this.logger)] as const);
    const end = (socket: DeviceSocket) => void this.end(socket);
    const onDisconnect = function (this: DeviceSocket): void {
      end(this);
    };
    server.on('connection', (socket) => {
      this.start(socket);
      for (const [event, listener] of listeners) socket.on(event, listener);
      socket.on('disconnect', onDisconnect);
    });
  }

  private start(socket: DeviceSocket): void {
    const session = socket.data.session;
    guardPackets(socket, this.limits, this.clock, this.channel, this.metrics, this.tokenCheck);
    this.channel.register(socket);
    this.channel.onOtherTraffic(socket, () => this.sessions.otherTraffic(session));
    this.tokens.track(session);
    session.ready = this.sessions.start(session, () => this.channel.starting(socket)).then(
      (ready) => {
        this.metrics.connections.inc({ result: 'accepted', reason: 'ok' });
        this.metrics.connectedDevices.inc();
        this.channel.ready(socket, ready);
        session.started = true;
        return true;
      },
      (err: Error) => {
        // Presence could not be recorded (Redis down): close the transport so the client retries.
        this.metrics.connections.inc({ result: 'refused', reason: 'unavailable' });
        this.startFailures.warn(`session of ${session.deviceId} not started: ${err.message}`);
        socket.conn.close();
        return false;
      },
    );
  }

  private async end(socket: DeviceSocket): Promise<void> {
    const session = socket.data.session;
    if (!session) return;
    this.channel.unregister(socket);
    this.tokens.forget(session);
    if (!(await session.ready)) return;
    this.metrics.connectedDevices.dec();
    await this.sessions.end(session).catch((err: Error) => {
      // Retried by SessionService until it lands or the presence TTL retires it; nothing else is lost.
      this.endFailures.warn(`presence of ${session.deviceId} not removed on disconnect (retried): ${err.message}`);
    });
  }

  private heartbeat(socket: DeviceSocket, payload: unknown): Promise<Ack<HeartbeatAck>> {
    const session = socket.data.session;
    // Every heartbeat but one racing the session's start: no turn spent awaiting a settled promise.
    if (session.started) return this.sessions.heartbeat(session, payload);
    return this.heartbeatOnceStarted(session, payload);
  }

  private async heartbeatOnceStarted(session: DeviceSession, payload: unknown): Promise<Ack<HeartbeatAck>> {
    if (!(await session.ready)) return errorAck('unavailable', 'session not started');
    return this.sessions.heartbeat(session, payload);
  }

  private async subscribe(socket: DeviceSocket, payload: unknown): Promise<Ack<TopicsAck>> {
    const request = readClientPayload('subscribe', payload);
    if (typeof request === 'string') return errorAck('invalid_payload', request);
    const plan = planSubscribe(socket.data.session.topics, joinedTopics(socket), request.topics);
    if (!Array.isArray(plan)) return plan;
    await socket.join(plan.map(rooms.topic));
    return { ok: true, topics: joinedTopics(socket) };
  }

  private async unsubscribe(socket: DeviceSocket, payload: unknown): Promise<Ack<TopicsAck>> {
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
  private async auth(socket: DeviceSocket, payload: unknown): Promise<Ack<AuthAck>> {
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

  private async unregisterPush(socket: DeviceSocket, payload: unknown): Promise<Ack<OkAck>> {
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

/**
 * The listener of one client event, shared by every socket. A handler that fails (a bug: they
 * answer bad input and store failures with error acks themselves) is logged, and a client that
 * asked for an ack gets `unavailable` rather than waiting for one that never comes.
 */
function clientEventListener(event: string, handle: ClientEventHandler, logger: Logger): (this: DeviceSocket, ...args: unknown[]) => void {
  const failed = (err: unknown): ErrorAck => {
    logger.error(`${event} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return errorAck('unavailable', `the gateway could not handle ${event}; retry`);
  };
  return function (this: DeviceSocket, ...args: unknown[]): void {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
    let reply: Promise<Ack<unknown>>;
    try {
      reply = handle(this, args.length > 1 ? args : args[0]);
    } catch (err) {
      reply = Promise.resolve(failed(err));
    }
    reply.then(
      (answer) => ack?.(answer),
      (err: unknown) => {
        const answer = failed(err); // logged whether or not an ack was asked for
        ack?.(answer);
      },
    );
  };
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
