import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { HeartbeatPolicy } from '../presence/heartbeat-policy';
import { PresenceStore } from '../presence/presence.store';
import { bucketOf, isNetworkKey, recommendInterval, STABLE_BEATS } from '../presence/network-intervals';
import { AppState } from '../presence/presence.types';
import { DeviceChannel } from './device-channel';
import { Ack, DeviceSession, errorAck, HeartbeatAck, ReadyPayload, sessionRef } from './socket-events';

/** Session policy: what a connect, a heartbeat and a disconnect mean for presence. */
@Injectable()
export class SessionService {
  private readonly logger = new Logger(SessionService.name);

  constructor(
    private readonly store: PresenceStore,
    private readonly policy: HeartbeatPolicy,
    private readonly clock: Clock,
    private readonly channel: DeviceChannel,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** Records presence (replacing any older session of the device) and builds the `ready` payload. */
  async start(session: DeviceSession): Promise<ReadyPayload> {
    const now = this.clock.now();
    const heartbeat: ReadyPayload['heartbeat'] = this.policy.initial();
    session.interval = heartbeat.interval;
    if (session.network) {
      const recommended = recommendInterval(await this.store.networkHistogram(session.network, now));
      if (recommended !== undefined) heartbeat.recommended = this.policy.clamp(recommended);
    }
    const replaced = await this.store.connect({
      deviceId: session.deviceId,
      userId: session.userId,
      sessionId: session.sessionId,
      instanceId: this.config.instanceId,
      platform: session.platform,
      network: session.network,
      now,
      interval: heartbeat.interval,
      ttl: heartbeat.ttl,
    });
    if (replaced && replaced.sessionId !== session.sessionId) {
      this.metrics.sessionsReplaced.inc();
      this.channel.replace(replaced.sessionId);
    }
    return {
      sessionId: session.sessionId,
      deviceId: session.deviceId,
      userId: session.userId,
      heartbeat,
      serverTime: now,
    };
  }

  async heartbeat(session: DeviceSession, payload: unknown): Promise<Ack<HeartbeatAck>> {
    const requested = readHeartbeat(payload);
    if (typeof requested === 'string') {
      this.metrics.heartbeats.inc({ result: 'invalid' });
      return errorAck('invalid_payload', requested);
    }
    // Without a wish the device keeps the interval it has, not the server default.
    const interval = this.policy.clamp(requested.interval ?? session.interval);
    const ttl = this.policy.ttlFor(interval);
    const now = this.clock.now();
    if (requested.network) session.network = requested.network;
    session.beatsAtInterval = interval === session.interval ? session.beatsAtInterval + 1 : 1;
    // One sample per run of STABLE_BEATS at an interval: the device held its link that long, repeatedly.
    const sampleBucket = session.network && session.beatsAtInterval === STABLE_BEATS ? bucketOf(interval) : undefined;
    let alive: boolean;
    try {
      alive = await this.store.heartbeat({
        deviceId: session.deviceId,
        sessionId: session.sessionId,
        now,
        interval,
        ttl,
        appState: requested.appState,
        network: requested.network,
        sampleBucket,
      });
    } catch (err) {
      this.metrics.heartbeats.inc({ result: 'error' });
      this.logger.warn(`heartbeat of ${session.deviceId} not recorded: ${(err as Error).message}`);
      return errorAck('unavailable', 'presence store unavailable, retry at the next interval');
    }
    if (!alive) {
      // Presence already ran out (or another session took over): this socket is a ghost. Closing
      // the transport makes the client reconnect and start a clean session.
      this.metrics.heartbeats.inc({ result: 'expired' });
      this.channel.expire([sessionRef(session, this.config.instanceId)]);
      return errorAck('session_expired', 'presence expired before this heartbeat; reconnect');
    }
    session.interval = interval;
    this.metrics.heartbeats.inc({ result: 'ok' });
    return { ok: true, interval, ttl, serverTime: now };
  }

  /** A clean disconnect makes the device offline at once (unless a newer session already took over). */
  async end(session: DeviceSession): Promise<void> {
    await this.store.disconnect([sessionRef(session, this.config.instanceId)], this.clock.now());
  }
}

export interface HeartbeatRequest {
  interval?: number;
  network?: string;
  appState?: AppState;
}

/** Validates `{ interval?, network?, appState? }` (or nothing); a string explains a refusal. */
export function readHeartbeat(payload: unknown): HeartbeatRequest | string {
  if (payload === undefined || payload === null) return {};
  if (typeof payload !== 'object' || Array.isArray(payload)) return 'heartbeat payload must be an object';
  const { interval, network, appState } = payload as Record<string, unknown>;
  if (interval !== undefined && (typeof interval !== 'number' || !Number.isFinite(interval) || interval <= 0)) {
    return 'interval must be a positive number of milliseconds';
  }
  if (network !== undefined && !isNetworkKey(network)) return 'network must be 1-64 characters of [A-Za-z0-9._:@/+-]';
  if (appState !== undefined && appState !== 'foreground' && appState !== 'background') {
    return 'appState must be "foreground" or "background"';
  }
  return { interval: interval, network: network, appState: appState };
}
