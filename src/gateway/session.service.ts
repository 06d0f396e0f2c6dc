import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { WarningSummary } from '../logging/warning-summary';
import { MetricsService } from '../metrics/metrics.service';
import { HeartbeatPolicy } from '../presence/heartbeat-policy';
import { PresenceStore } from '../presence/presence.store';
import { HeartbeatUpdate, indexAfter, SessionRef } from '../presence/presence.types';
import { OfflineReason } from '../events/event.types';
import { bucketOf, isStableRun, recommendInterval } from '../presence/network-intervals';
import { readClientPayload } from '../channel/client-events';
import { DeviceChannel } from '../channel/device-channel';
import { Ack, DeviceSession, errorAck, HeartbeatAck, offlineReason, ReadyPayload, sessionRef } from '../channel/socket-events';

/** The first retry of a session end whose write failed, after this; each failed retry doubles it, up to END_RETRY_MAX_MS. */
const END_RETRY_MS = 1_000;
const END_RETRY_MAX_MS = 8_000;
/** Session ends held for retry at most; past it the oldest are left to their presence TTL. */
const MAX_UNENDED = 50_000;

/** A session end whose write failed, kept until a retry succeeds or its presence has run out anyway. */
interface Unended {
  ref: SessionRef;
  now: number;
  reason: OfflineReason;
  /** After this the presence TTL has ended the session (the sweep's reason, not this one): nothing left to retry. */
  until: number;
}

/** Session policy: what a connect, a heartbeat and a disconnect mean for presence. */
@Injectable()
export class SessionService implements OnApplicationShutdown {
  private readonly logger = new Logger(SessionService.name);
  /** Heartbeats not recorded: when one fails, thousands do (see WarningSummary). */
  private readonly beatFailures = new WarningSummary((m) => this.logger.warn(m), () => this.clock.now());
  /** Failed session ends by session id, oldest first (see end). */
  private readonly unended = new Map<string, Unended>();
  private retryTimer?: NodeJS.Timeout;
  private retryDelay = END_RETRY_MS;
  private retrying = false;
  private stopped = false;

  constructor(
    private readonly store: PresenceStore,
    private readonly policy: HeartbeatPolicy,
    private readonly clock: Clock,
    private readonly channel: DeviceChannel,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly load: LoadMonitor,
  ) {}

  /**
   * Records presence (replacing any older session of the device) and builds the `ready` payload.
   * `issued` runs as soon as the presence write is sent, before its answer (see DeviceChannel.starting).
   */
  async start(session: DeviceSession, issued?: () => void): Promise<ReadyPayload> {
    const now = this.clock.now();
    const heartbeat: ReadyPayload['heartbeat'] = this.policy.initial(session.rtt);
    session.interval = heartbeat.interval;
    if (session.network) {
      const recommended = recommendInterval(await this.store.networkHistogram(session.network, now));
      if (recommended !== undefined) heartbeat.recommended = this.policy.clamp(recommended);
    }
    const connecting = this.store.connect({
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
    issued?.();
    const replaced = await connecting;
    // The start wrote these (and no app state): the heartbeats that follow write only what changes.
    session.recorded.interval = heartbeat.interval;
    session.recorded.network = session.network;
    session.recorded.expiresAt = session.recorded.indexAt = now + heartbeat.ttl;
    if (replaced && replaced.sessionId !== session.sessionId) {
      this.metrics.sessionsReplaced.inc();
      this.channel.close([replaced], 'replaced');
    }
    return {
      sessionId: session.sessionId,
      deviceId: session.deviceId,
      userId: session.userId,
      heartbeat,
      serverTime: now,
      tokenExpiresAt: session.tokenExpiresAt,
    };
  }

  async heartbeat(session: DeviceSession, payload: unknown): Promise<Ack<HeartbeatAck>> {
    const requested = readClientPayload('heartbeat', payload);
    if (typeof requested === 'string') {
      this.metrics.heartbeats.inc({ result: 'invalid' });
      return errorAck('invalid_payload', requested);
    }
    // Without a wish the device keeps the interval it has, not the server default.
    const interval = this.policy.clamp(requested.interval ?? session.interval);
    const ttl = this.policy.ttlFor(interval, requested.rtt);
    const now = this.clock.now();
    if (requested.network) session.network = requested.network;
    session.beatsAtInterval = interval === session.interval ? session.beatsAtInterval + 1 : 1;
    if (session.beatsAtInterval === 1) session.runStartedAt = now;
    // One sample per run of STABLE_BEATS at an interval: the device held its link that long, repeatedly,
    // as the gateway's own clock saw it (a client cannot claim an interval it did not wait). The
    // store keeps at most one sample per device and network per DEVICE_SAMPLE_PERIOD_MS.
    const stable = isStableRun(session.beatsAtInterval, session.runStartedAt ?? now, now, interval);
    const sampleBucket = session.network && stable ? bucketOf(interval) : undefined;
    const recorded = session.recorded;
    const update: HeartbeatUpdate = {
      deviceId: session.deviceId,
      sessionId: session.sessionId,
      instanceId: this.config.instanceId,
      now,
      // A session this process is late in handling is not the device's fault: it lives on.
      grace: this.load.delay,
      interval,
      ttl,
      appState: requested.appState,
      // The session's network (from the handshake or a later beat): a sample is recorded under it.
      network: session.network,
      sampleBucket,
      recordedInterval: recorded.interval,
      recordedAppState: recorded.appState,
      recordedNetwork: recorded.network,
      recordedExpiresAt: recorded.expiresAt,
      recordedIndexAt: recorded.indexAt,
    };
    // Once this write lands the record holds these: a heartbeat sent after it (even before its ack)
    // need not write them again, as Redis applies a session's heartbeats in the order they were sent.
    recorded.interval = interval;
    if (requested.appState) recorded.appState = requested.appState;
    if (session.network) recorded.network = session.network;
    recorded.indexAt = indexAfter(update);
    recorded.expiresAt = now + ttl;
    let alive: boolean;
    const call = this.load.started();
    try {
      alive = await this.store.heartbeat(update);
    } catch (err) {
      // The session stays as it was; if Redis ran the heartbeat after all, it is only fresher. What
      // its record holds is not known now (this write, and those sent after it that skipped what it
      // carried, may or may not have landed): the next heartbeat writes every field it has.
      session.recorded = {};
      this.metrics.heartbeats.inc({ result: 'error' });
      this.beatFailures.warn(`heartbeat of ${session.deviceId} not recorded: ${(err as Error).message}`);
      return errorAck('unavailable', 'presence store unavailable, retry at the next interval');
    } finally {
      this.load.settled(call);
    }
    if (!alive) {
      // Presence already ran out, or another session took over: this socket is a ghost. A takeover
      // normally closes it at once by word from the new session's instance; that word travels over
      // pub/sub, which may lose it (a failover), so the ghost's own next heartbeat closes it with
      // the same reason. Closing the transport makes the client reconnect and start a clean session.
      const holder = await this.store.getDevices([session.deviceId], now).then(([d]) => d?.sessionId, () => undefined);
      if (holder && holder !== session.sessionId) {
        this.metrics.heartbeats.inc({ result: 'replaced' });
        this.channel.close([sessionRef(session, this.config.instanceId)], 'replaced');
        return errorAck('session_expired', 'another session of this device took over; this one is closed');
      }
      this.metrics.heartbeats.inc({ result: 'expired' });
      this.channel.close([sessionRef(session, this.config.instanceId)], 'expired');
      return errorAck('session_expired', 'presence expired before this heartbeat; reconnect');
    }
    session.interval = interval;
    this.metrics.heartbeats.inc({ result: 'ok' });
    return { ok: true, interval, ttl, serverTime: now };
  }

  /**
   * Something other than a heartbeat crossed the connection: the current run of beats no longer
   * shows how long an idle link survives, so learning starts a new run at the next beat.
   */
  otherTraffic(session: DeviceSession): void {
    session.beatsAtInterval = 0;
  }

  /**
   * A disconnect makes the device offline at once (unless a newer session already took over, or
   * whoever closed it ended its presence first). The reason recorded is why the server closed it,
   * if it did (`closing`), else the client left (`client_close`).
   */
  async end(session: DeviceSession): Promise<void> {
    const ref = sessionRef(session, this.config.instanceId);
    const now = this.clock.now();
    const reason = offlineReason(session.closing);
    try {
      await this.store.disconnect([ref], now, reason);
    } catch (err) {
      // Redis down or stalled: the device would show online until its presence TTL ran out (and
      // then end as heartbeat_timeout). Retried with its own time and reason instead; a retry that
      // finds the session already ended (the write ran after all) changes nothing.
      this.holdForRetry({ ref, now, reason, until: now + this.policy.ttlFor(session.interval) });
      throw err;
    }
  }

  /** Session ends waiting for a retry. */
  get unendedCount(): number {
    return this.unended.size;
  }

  private holdForRetry(u: Unended): void {
    this.unended.set(u.ref.sessionId, u); // a session ends once: never held already
    let dropped = 0;
    for (const key of this.unended.keys()) {
      if (this.unended.size <= MAX_UNENDED) break;
      this.unended.delete(key);
      dropped++;
    }
    if (dropped) this.logger.warn(`${dropped} failed session ends dropped (more than ${MAX_UNENDED} held): their presence TTL ends them`);
    this.armRetry();
  }

  /**
   * Retries the held session ends (all at once: the store batches them), forgetting those whose
   * presence has run out meanwhile. If any fails again, the next retry waits twice as long, up to
   * END_RETRY_MAX_MS.
   */
  async retryEnds(): Promise<void> {
    if (this.retrying) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retrying = true;
    let failures = 0;
    try {
      const now = this.clock.now();
      await Promise.all(
        [...this.unended.values()].map(async (u) => {
          if (u.until > now) {
            try {
              await this.store.disconnect([u.ref], u.now, u.reason);
            } catch {
              return void failures++;
            }
          }
          this.unended.delete(u.ref.sessionId);
        }),
      );
    } finally {
      this.retrying = false;
    }
    this.retryDelay = failures ? Math.min(this.retryDelay * 2, END_RETRY_MAX_MS) : END_RETRY_MS;
    if (failures) this.logger.warn(`${failures} session ends failed again; next retry in ${this.retryDelay} ms`);
    this.armRetry();
  }

  private armRetry(): void {
    if (this.retryTimer || this.retrying || this.stopped || this.unended.size === 0) return;
    this.retryTimer = setTimeout(() => void this.retryEnds(), this.retryDelay).unref();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

