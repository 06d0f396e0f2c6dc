import { Injectable, PayloadTooLargeException, UnprocessableEntityException } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Clock } from '../common/clock';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { invalidFields } from '../common/field-errors';
import { IDEMPOTENCY_KEY, NOTIFICATION_ID } from '../common/patterns';
import { AppConfig } from '../config/app-config';
import { DeviceChannel } from '../channel/device-channel';
import { NotificationPayload } from '../channel/socket-events';
import { MetricsService } from '../metrics/metrics.service';
import { PresenceStore } from '../presence/presence.store';
import { CreateNotificationRequest, NotificationAcceptedDto } from './create-notification.dto';
import { DeliveryService } from './delivery.service';
import { NotificationStore } from './notification.store';
import { NotificationStatus, PublishRequest } from './notification.types';
import { busiestPartition, mintNotificationId } from './notification-id';
import { FALLBACK_LEASE_MS, FallbackService } from '../push/fallback.service';
import type { PendingAdmission } from '../auth/api-auth.guard';
import { AdmissionRefused } from '../auth/rate-limiter';

export interface PublishContext {
  apiKeyId: string;
  idempotencyKey?: string;
}

/** Publishing policy: resolve targets, store the notification for each, send to those online. */
@Injectable()
export class NotificationsService {
  constructor(
    private readonly store: NotificationStore,
    private readonly presence: PresenceStore,
    private readonly delivery: DeliveryService,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly fallback: FallbackService,
  ) {}

  /**
   * `dto` passed CreateNotificationPipe: at least one target, `data` an object of bounded depth.
   * `admission`: the API key's rate limit, not yet run (ApiAuthGuard.foldable): for a publish to
   * device ids only, without an Idempotency-Key, that the store writes in one call, it runs in
   * that call (refused: 429, nothing written); otherwise it runs first, on its own, before
   * anything else is checked, as the guard would have.
   */
  async publish(dto: CreateNotificationRequest, ctx: PublishContext, admission?: PendingAdmission): Promise<NotificationAcceptedDto> {
    const size = Buffer.byteLength(JSON.stringify({ data: dto.data, title: dto.title, body: dto.body }));
    const named = dto.deviceIds?.length ?? 0;
    // Users without a topic or a key: their devices looked up in the write where the store can (one
    // round trip for the POST, not three: the rate check, the lookup, the write).
    const usersCap = dto.userIds?.length && !dto.topic && ctx.idempotencyKey === undefined ? this.store.foldsUsers(named) : 0;
    const folded =
      admission &&
      ctx.idempotencyKey === undefined &&
      size <= this.config.maxPayloadBytes &&
      (!dto.userIds?.length || usersCap > 0) &&
      !dto.topic &&
      this.store.foldsAdmission(named)
        ? admission.fold
        : undefined;
    if (admission && !folded) await admission.alone();
    if (ctx.idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(ctx.idempotencyKey)) {
      throw invalidFields([{ field: 'Idempotency-Key', reasons: [`the Idempotency-Key header must be ${IDEMPOTENCY_KEY.describe}`] }]);
    }
    if (size > this.config.maxPayloadBytes) {
      throw new PayloadTooLargeException(
        `data, title and body take ${size} bytes as JSON; MAX_PAYLOAD_BYTES is ${this.config.maxPayloadBytes}`,
      );
    }
    const now = folded ? folded.now : this.clock.now();
    const ttlMs = (dto.ttl ?? 0) * 1000;
    const deviceIds = usersCap > 0 ? [...new Set(dto.deviceIds)] : await this.resolveDevices(dto, now);
    const idempotency = ctx.idempotencyKey
      ? { key: `${ctx.apiKeyId}:${ctx.idempotencyKey}`, fingerprint: fingerprint(dto), windowMs: this.config.idempotencyWindowMs }
      : undefined;
    // The id names the partition of the notification's header: the Idempotency-Key's, so every
    // retry finds its record there, else the one with the most targets (one call for a small publish).
    const keys = this.config.keys;
    const payload: NotificationPayload = {
      id: mintNotificationId(keys, idempotency ? keys.partitionOf(idempotency.key) : busiestPartition(keys, deviceIds)),
      data: dto.data,
      title: dto.title,
      body: dto.body,
      topic: dto.topic,
      collapseKey: dto.collapseKey,
      createdAt: now,
      expiresAt: ttlMs > 0 ? now + ttlMs : undefined,
    };
    const json = JSON.stringify(payload);
    const notification = { payload, bytes: Buffer.byteLength(json) };
    const request: PublishRequest = {
      payload,
      payloadJson: json,
      deviceIds,
      // ttl 0 still waits one ack window, so a device that drops and comes straight back gets it.
      effectiveExpiresAt: now + (ttlMs > 0 ? ttlMs : this.config.ackTimeoutMs),
      keepOffline: ttlMs > 0,
      maxInbox: this.config.inboxMaxSize,
      retentionMs: this.config.notificationRetentionMs,
      now,
      ackDeadlineAt: now + this.config.ackTimeoutMs,
      fallback: dto.fallback ?? 'none',
      leaseMs: FALLBACK_LEASE_MS,
      idempotency,
      // A large fan-out is sent part by part, each part once it is durable (inbox before emit).
      onDurable: (online) => this.delivery.dispatch(notification, online),
      admit: folded,
      users: usersCap > 0 ? { ids: dto.userIds!, forgetBefore: now - this.config.deviceRetentionMs, maxTargets: usersCap } : undefined,
    };
    const publish = (r: PublishRequest) =>
      this.store.publish(r).catch((err: unknown) => {
        if (err instanceof AdmissionRefused && admission) throw admission.refused(err.decision);
        // Redis may have stored it (or some of its parts) without answering: whatever it holds must still reach online devices.
        if (err instanceof StoreUnavailableError && err.outcome === 'unknown') this.recheckLater(r, dto, now);
        throw err;
      });
    // A retry under an Idempotency-Key re-sends the first notification to targets still pending:
    // acks for it taken in here and not yet recorded are recorded first.
    if (idempotency) this.delivery.recordQueuedAcks();
    let result = await publish(request);
    if (result.kind === 'unfolded') {
      // The users have more devices than one call takes: looked up first, as without folding (an
      // admission in that call has counted, and is not run again).
      result = await publish({ ...request, deviceIds: await this.resolveDevices(dto, now), users: undefined, admit: undefined });
      if (result.kind === 'unfolded') throw new Error('a publish without users cannot come back unfolded');
    }
    if (result.kind === 'conflict') {
      this.metrics.notifications.inc({ result: 'conflict' });
      throw new UnprocessableEntityException('Idempotency-Key was already used with a different request body');
    }
    if (result.kind === 'replay') {
      // A 202 means "being sent now", a replay too: the first attempt may have stored it unsent.
      this.metrics.notifications.inc({ result: 'replayed' });
      if (result.pending) this.delivery.dispatch(result.pending.notification, result.pending.online);
      return result.answer;
    }
    this.metrics.notifications.inc({ result: 'accepted' });
    this.metrics.queued.inc(result.answer.queued);
    this.metrics.inboxEvicted.inc(result.evicted);
    this.delivery.dispatch(result.notification ?? notification, result.online);
    // Targets offline now get their native push at once; the store leased these jobs to this instance.
    this.fallback.send(result.fallback);
    return result.answer;
  }

  /**
   * After a publish whose outcome is unknown: its targets here and elsewhere read their inboxes
   * again (DeliveryService.recheckLater). Users looked up in the write are looked up now, as an
   * unfolded publish would have (resolveDevices); if that fails too, their devices get it at their
   * next inbox read (a reconnect, or a redelivery).
   */
  private recheckLater(r: PublishRequest, dto: CreateNotificationRequest, now: number): void {
    if (!r.users) return this.delivery.recheckLater(r.deviceIds);
    void this.resolveDevices(dto, now).then(
      (deviceIds) => this.delivery.recheckLater(deviceIds),
      () => this.delivery.recheckLater(r.deviceIds),
    );
  }

  /**
   * Null for unknown ids; one that is not a UUID can never be known, and never reaches the store.
   * Acks this instance took in and has not recorded yet (DeliveryService.recordAck) are written
   * first, so a status read right after a device's ack here shows it.
   */
  async status(id: string): Promise<NotificationStatus | null> {
    if (!NOTIFICATION_ID.test(id)) return null;
    this.delivery.recordQueuedAcks();
    return this.store.status(id, this.clock.now());
  }

  private async resolveDevices(dto: CreateNotificationRequest, now: number): Promise<string[]> {
    // A topic alone: its devices, each once already, as they are (a 10k topic's second Set took
    // 5-9 ms before the first device was written to, docs/performance.md, nineteenth round).
    if (dto.topic && !dto.deviceIds?.length && !dto.userIds?.length) return this.channel.topicDevices(dto.topic);
    const ids = new Set(dto.deviceIds ?? []);
    const [perUser, subscribers] = await Promise.all([
      Promise.all((dto.userIds ?? []).map((u) => this.presence.userDeviceIds(u, now))),
      dto.topic ? this.channel.topicDevices(dto.topic) : [],
    ]);
    for (const devices of perUser) for (const deviceId of devices) ids.add(deviceId);
    for (const deviceId of subscribers) ids.add(deviceId);
    return [...ids];
  }
}

/** Same body, same fingerprint: key order in objects does not matter. */
function fingerprint(dto: CreateNotificationRequest): string {
  return createHash('sha256').update(canonical(dto)).digest('base64url');
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      // Code-unit order: localeCompare depends on the locale and calls some different keys equal.
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
