import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DeviceChannel, InboundDelivery, PushOutcome } from '../channel/device-channel';
import { DeviceSocket, NotificationPayload, tokenRanOut } from '../channel/socket-events';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { Deliverable, OnlineTarget } from './notification.types';
import { NotificationStore } from './notification.store';
import { Outbox, OutboxPort } from './outbox';

/** After an uncertain write, other instances are asked to re-read inboxes at these delays (ms): Redis may still be down at first. */
export const RECHECK_DELAYS_MS = [0, 1_000, 5_000, 15_000];

/**
 * Puts stored notifications on the wire and turns acks into receipts. Everything it sends is
 * already in the device's inbox, so a lost emit or a missing ack costs nothing: the notification
 * stays pending and goes out again (same id), at the latest on the device's next connection.
 * Each local socket has an Outbox that paces it; notifications for sockets on other instances are
 * handed to those instances, which pace and record them.
 */
@Injectable()
export class DeliveryService implements OnModuleInit {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly outboxes = new WeakMap<DeviceSocket, Outbox>();
  private readonly port: OutboxPort;
  private readonly arming: { id: string; deviceId: string }[] = [];

  constructor(
    private readonly store: NotificationStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.port = {
      maxBufferedBytes: config.socketMaxBufferedBytes,
      slowConsumerGraceMs: config.slowConsumerGraceMs,
      now: () => this.clock.now(),
      buffered: (socket) => this.channel.bufferedBytes(socket),
      // A session whose token ran out past the grace gets nothing more, even before the sweeper ends it.
      isOpen: (socket) => this.channel.isOpen(socket) && !tokenRanOut(socket.data.session, this.clock.now()),
      emit: (socket, n, fromInbox) => {
        this.metrics.pushesSent.inc();
        if (fromInbox) {
          this.metrics.pushesRedelivered.inc();
          this.armDeadline(n.payload.id, socket.data.session.deviceId);
        }
        return this.channel.pushTo(socket, n.payload, this.config.ackTimeoutMs, this.lateAck(socket.data.session.deviceId, n.payload));
      },
      readPending: (deviceId, limit) => this.store.pending(deviceId, this.clock.now(), limit),
      settled: (deviceId, n, outcome) => void this.settled(deviceId, n, outcome),
      onFull: () => this.metrics.socketsFull.inc(),
      endSlowConsumer: (socket) => {
        this.metrics.slowConsumers.inc();
        this.channel.closeSocket(socket, 'slow_consumer');
      },
    };
  }

  onModuleInit(): void {
    this.channel.onSessionReady((socket) => this.attach(socket));
    this.channel.onDeliver((delivery) => this.deliverLocal(delivery));
    this.channel.onRecheck((deviceIds) => this.recheckLocal(deviceIds));
  }

  /** Sends a stored notification to the devices that were online when it was stored, wherever they are. */
  dispatch(notification: Deliverable, targets: readonly OnlineTarget[]): void {
    const byInstance = new Map<string, string[]>();
    for (const { deviceId, instanceId } of targets) {
      const ids = byInstance.get(instanceId);
      if (ids) ids.push(deviceId);
      else byInstance.set(instanceId, [deviceId]);
    }
    for (const [instanceId, deviceIds] of byInstance) {
      const delivery = { payload: notification.payload, bytes: notification.bytes, deviceIds };
      if (instanceId === this.config.instanceId) this.deliverLocal(delivery);
      else this.channel.deliverRemote(instanceId, delivery);
    }
  }

  /**
   * A write whose outcome is unknown may have stored notifications that nobody was sent: have
   * these devices' sockets read their inboxes again, here now (retried until Redis answers) and on
   * the other instances a few times while Redis comes back.
   */
  recheckLater(deviceIds: readonly string[]): void {
    if (!deviceIds.length) return;
    const ids = [...deviceIds];
    this.recheckLocal(ids);
    for (const delay of RECHECK_DELAYS_MS) setTimeout(() => this.channel.recheckRemote(ids), delay).unref();
  }

  /** Bytes a device's socket here holds now (transport plus unacked notifications); undefined when it is not here. */
  heldBytes(deviceId: string): number | undefined {
    return this.outboxOf(deviceId)?.held;
  }

  private attach(socket: DeviceSocket): void {
    const outbox = new Outbox(socket, socket.data.session.deviceId, this.port);
    this.outboxes.set(socket, outbox);
    socket.once('disconnect', () => outbox.close());
    outbox.start();
  }

  private deliverLocal({ payload, bytes, deviceIds }: InboundDelivery): void {
    for (const deviceId of deviceIds) this.outboxOf(deviceId)?.offer({ payload, bytes });
  }

  private recheckLocal(deviceIds: readonly string[]): void {
    for (const deviceId of deviceIds) this.outboxOf(deviceId)?.recheck();
  }

  private outboxOf(deviceId: string): Outbox | undefined {
    const socket = this.channel.localSocket(deviceId);
    return socket && this.outboxes.get(socket);
  }

  /**
   * A notification sent again from the inbox gets a durable ack deadline (one sent live got its
   * deadline with the publish). Deadlines of one tick go to the store in one call.
   */
  private armDeadline(id: string, deviceId: string): void {
    this.arming.push({ id, deviceId });
    if (this.arming.length > 1) return;
    setImmediate(() => {
      const targets = this.arming.splice(0);
      const now = this.clock.now();
      this.store.armAckDeadlines(targets, now + this.config.ackTimeoutMs, now).catch((err: Error) => {
        // Unacked goes unreported for these; the notifications themselves stay pending and come again.
        this.logger.warn(`ack deadlines of ${targets.length} redelivered notifications not recorded: ${err.message}`);
      });
    });
  }

  private async settled(deviceId: string, n: Deliverable, outcome: PushOutcome): Promise<void> {
    if (!outcome.acked) {
      // Only the socket's pacing ends here: notification.unacked (and a fallback) come from the
      // store's durable deadline (DeadlineSweeper), fired by whichever instance claims it.
      this.metrics.pushesUnacked.inc();
      return;
    }
    this.metrics.pushesAcked.inc();
    this.metrics.ackLatency.observe(outcome.latencyMs / 1000);
    await this.record('ack', n.payload.id, deviceId, () => this.store.ack(n.payload, deviceId, this.clock.now()));
  }

  /** An ack after the timeout is still a receipt. The callback keeps only ids: Socket.IO may hold it as long as the socket lives. */
  private lateAck(deviceId: string, { id, collapseKey }: NotificationPayload): () => void {
    return () => void this.record('ack', id, deviceId, () => this.store.ack({ id, collapseKey }, deviceId, this.clock.now()));
  }

  private async record(what: string, id: string, deviceId: string, write: () => Promise<boolean>): Promise<void> {
    try {
      await write();
    } catch (err) {
      // The receipt is lost, not the notification: it stays pending and is sent again (same id).
      this.logger.warn(`${what} of ${id} by ${deviceId} not recorded: ${(err as Error).message}`);
    }
  }
}
