import { BadRequestException, Injectable, Logger, PayloadTooLargeException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { DeviceChannel } from '../gateway/device-channel';
import { NotificationPayload } from '../gateway/socket-events';
import { MetricsService } from '../metrics/metrics.service';
import { PresenceStore } from '../presence/presence.store';
import { CreateNotificationDto, NotificationAcceptedDto } from './create-notification.dto';

/** Publishing policy: resolve targets to devices, send to those online, account for acks. */
@Injectable()
export class NotificationsService {
  private readonly logger = new Logger(NotificationsService.name);

  constructor(
    private readonly store: PresenceStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  async publish(dto: CreateNotificationDto): Promise<NotificationAcceptedDto> {
    if (!dto.deviceIds && !dto.userIds && !dto.topic) {
      throw new BadRequestException('deviceIds, userIds, topic: at least one target is required');
    }
    if (dto.topic) {
      throw new BadRequestException('topic: publishing to topics is not available in this version; target deviceIds or userIds');
    }
    const size = Buffer.byteLength(JSON.stringify({ data: dto.data, title: dto.title, body: dto.body }));
    if (size > this.config.maxPayloadBytes) {
      throw new PayloadTooLargeException(
        `data, title and body take ${size} bytes as JSON; MAX_PAYLOAD_BYTES is ${this.config.maxPayloadBytes}`,
      );
    }
    const now = this.clock.now();
    const deviceIds = await this.resolveDevices(dto, now);
    const views = await this.store.getDevices(deviceIds, now);
    const online = views.filter((v) => v?.online).map((v) => v!.deviceId);

    const payload: NotificationPayload = {
      id: randomUUID(),
      data: dto.data,
      title: dto.title,
      body: dto.body,
      collapseKey: dto.collapseKey,
      createdAt: now,
      expiresAt: dto.ttl ? now + dto.ttl * 1000 : undefined,
    };
    for (const deviceId of online) void this.deliver(deviceId, payload);
    return { id: payload.id, online: online.length, queued: 0 };
  }

  private async resolveDevices(dto: CreateNotificationDto, now: number): Promise<string[]> {
    const ids = new Set(dto.deviceIds ?? []);
    const perUser = await Promise.all((dto.userIds ?? []).map((u) => this.store.listUserDevices(u, now)));
    for (const devices of perUser) for (const d of devices) ids.add(d.deviceId);
    return [...ids];
  }

  private async deliver(deviceId: string, payload: NotificationPayload): Promise<void> {
    this.metrics.pushesSent.inc();
    const outcome = await this.channel.push(deviceId, payload, this.config.ackTimeoutMs);
    if (outcome.acked) {
      this.metrics.pushesAcked.inc();
      this.metrics.ackLatency.observe(outcome.latencyMs / 1000);
    } else {
      this.metrics.pushesUnacked.inc();
      this.logger.debug(`notification ${payload.id} not acked by ${deviceId}`);
    }
  }
}
