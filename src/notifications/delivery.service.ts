import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { DeviceChannel, PushOutcome } from '../channel/device-channel';
import { DeviceSocket, NotificationPayload } from '../channel/socket-events';
import { MetricsService } from '../metrics/metrics.service';
import { NotificationStore } from './notification.store';

/**
 * Puts stored notifications on the wire and turns acks into receipts. Everything it sends is
 * already in the device's inbox, so a lost emit or a missing ack costs nothing: the notification
 * stays pending and goes out again on the device's next connection (at-least-once, same id).
 */
@Injectable()
export class DeliveryService implements OnModuleInit {
  private readonly logger = new Logger(DeliveryService.name);

  constructor(
    private readonly store: NotificationStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    this.channel.onSessionReady((socket) => void this.deliverPending(socket));
  }

  /** Sends a just-published notification to an online device. */
  send(deviceId: string, payload: NotificationPayload): void {
    void this.settle(deviceId, payload, this.channel.push(deviceId, payload, this.config.ackTimeoutMs));
  }

  /** After `ready`: the device's pending notifications, oldest first, on this socket. */
  async deliverPending(socket: DeviceSocket): Promise<void> {
    const { deviceId } = socket.data.session;
    let pending: NotificationPayload[];
    try {
      pending = await this.store.pending(deviceId, this.clock.now(), this.config.inboxMaxSize);
    } catch (err) {
      // Still stored: it goes out on the next connection.
      this.logger.warn(`pending notifications of ${deviceId} not read: ${(err as Error).message}`);
      return;
    }
    if (pending.length) this.metrics.pushesRedelivered.inc(pending.length);
    // Emitted back to back: one connection keeps their order, and acks settle each independently.
    await Promise.all(pending.map((p) => this.settle(deviceId, p, this.channel.pushTo(socket, p, this.config.ackTimeoutMs))));
  }

  private async settle(deviceId: string, payload: NotificationPayload, outcome: Promise<PushOutcome>): Promise<void> {
    this.metrics.pushesSent.inc();
    const result = await outcome;
    if (!result.acked) {
      this.metrics.pushesUnacked.inc();
      return;
    }
    this.metrics.pushesAcked.inc();
    this.metrics.ackLatency.observe(result.latencyMs / 1000);
    try {
      await this.store.ack(payload, deviceId, this.clock.now());
    } catch (err) {
      // The receipt is lost, not the notification: it stays pending and is sent again (same id).
      this.logger.warn(`ack of ${payload.id} by ${deviceId} not recorded: ${(err as Error).message}`);
    }
  }
}
