import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DeviceChannel, InboundDelivery, PushOutcome } from '../channel/device-channel';
import { DeviceSession, DeviceSocket, NotificationPayload, tokenRanOut } from '../channel/socket-events';
import { Clock } from '../common/clock';
import { TransientMap } from '../common/transient-map';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { Deliverable, OnlineTarget } from './notification.types';
import { Ack, NotificationStore } from './notification.store';
import { Outbox, OutboxPort } from './outbox';

/** After an uncertain write, other instances are asked to re-read inboxes at these delays (ms): Redis may still be down at first. */
export const RECHECK_DELAYS_MS = [0, 1_000, 5_000, 15_000];

/** Acks recorded per store call at most. */
export const ACK_BATCH_MAX = 500;

/**
 * Puts stored notifications on the wire and turns acks into receipts. Everything it sends is
 * already in the device's inbox, so a lost emit or a missing ack costs nothing: the notification
 * stays pending and goes out again (same id), at the latest on the device's next connection.
 * Each local socket has an Outbox that paces it; notifications for sockets on other instances are
 * handed to those instances, which pace and record them.
 */
@Injectable()
export class DeliveryService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly outboxes = new WeakMap<DeviceSocket, Outbox>();
  private readonly port: OutboxPort;
  private readonly arming: { id: string; deviceId: string }[] = [];
  /** Acks received and not yet handed to the store (see recordAck). */
  private readonly acks: Ack[] = [];
  /** Ack writes not answered yet. */
  private readonly ackWrites = new TransientMap<Promise<void>, true>();
  private acksScheduled = false;

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
      emit: (socket, n, fromInbox, onOutcome) => {
        this.metrics.pushesSent.inc();
        if (fromInbox) {
          this.metrics.pushesRedelivered.inc();
          this.armDeadline(n.payload.id, socket.data.session.deviceId);
        }
        this.channel.pushTo(socket, n.payload, this.config.ackTimeoutMs, onOutcome, this.lateAck(socket.data.session, n.payload, fromInbox));
      },
      // Acks received so far go to the store first (same connection, so Redis applies them before
      // the read): an acked notification is never read back and sent again by this instance.
      readPending: (deviceId, limit) => {
        this.recordQueuedAcks();
        return this.store.pending(deviceId, this.clock.now(), limit);
      },
      settled: (socket, n, fromInbox, outcome) => this.settled(socket, n, fromInbox, outcome),
      onFull: () => this.metrics.socketsFull.inc(),
      endSlowConsumer: (socket) => {
        this.metrics.slowConsumers.inc();
        this.channel.closeSocket(socket, 'slow_consumer');
      },
    };
  }

  onModuleInit(): void {
    this.channel.onSessionStarting((socket) => this.attach(socket).prefetch());
    this.channel.onSessionReady((socket) => (this.outboxes.get(socket) ?? this.attach(socket)).start());
    this.channel.onDeliver((delivery) => this.deliverLocal(delivery));
    this.channel.onRecheck((deviceIds) => this.recheckLocal(deviceIds));
  }

  /** Acks received in the last moments are recorded before the connections close. */
  async beforeApplicationShutdown(): Promise<void> {
    this.recordQueuedAcks();
    await Promise.all([...this.ackWrites.keys()]);
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

  /**
   * A session being recorded gets its outbox at once: its first inbox read goes out right behind
   * the presence write (one round trip for both), and whatever is published for the device
   * meanwhile marks the outbox to read again. It sends nothing before the session is ready.
   */
  private attach(socket: DeviceSocket): Outbox {
    const outbox = new Outbox(socket, socket.data.session.deviceId, this.port);
    this.outboxes.set(socket, outbox);
    socket.on('disconnect', this.closeOutbox);
    return outbox;
  }

  /** One disconnect listener for every socket's outbox, not a closure per socket. */
  private readonly closeOutbox = outboxCloser(this.outboxes);

  private deliverLocal({ payload, bytes, deviceIds }: InboundDelivery): void {
    const notification = { payload, bytes };
    if (deviceIds.length === 1) this.outboxOf(deviceIds[0]!)?.offer(notification);
    else this.channel.withSharedEncoding(payload, () => deviceIds.forEach((deviceId) => this.outboxOf(deviceId)?.offer(notification)));
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

  private settled(socket: DeviceSocket, n: Deliverable, fromInbox: boolean, outcome: PushOutcome): void {
    if (!outcome.acked) {
      // Only the socket's pacing ends here: notification.unacked (and a fallback) come from the
      // store's durable deadline (DeadlineSweeper), fired by whichever instance claims it.
      this.metrics.pushesUnacked.inc();
      return;
    }
    this.metrics.pushesAcked.inc();
    this.metrics.ackLatency.observe(outcome.latencyMs / 1000);
    const { deviceId, userId } = socket.data.session;
    this.recordAck({ payload: { id: n.payload.id, collapseKey: n.payload.collapseKey }, deviceId, userId, fromInbox });
  }

  /** An ack after the timeout is still a receipt. The callback keeps only ids: Socket.IO may hold it as long as the socket lives. */
  private lateAck({ deviceId, userId }: DeviceSession, { id, collapseKey }: NotificationPayload, fromInbox: boolean): () => void {
    return () => this.recordAck({ payload: { id, collapseKey }, deviceId, userId, fromInbox });
  }

  /**
   * Acks are recorded in batches (group commit): the first one waits ACK_BATCH_WINDOW_MS (0: the
   * end of the current event-loop turn), and while a batch is being written the next ones gather
   * for the next call. At 1k POST/s to one device each ack came alone, one script call per ack;
   * with 2 ms, two or three share one (under a fan-out's thousands of acks one script records
   * hundreds either way). What depends on a recorded ack waits for it: this instance's inbox reads
   * and status reads send the queue first (readPending, recordQueuedAcks). An ack not yet recorded
   * when the process dies leaves the notification pending: it is sent again (same id), which
   * at-least-once allows.
   */
  private recordAck(ack: Ack): void {
    this.acks.push(ack);
    if (this.acksScheduled || this.ackWrites.size > 0) return;
    this.acksScheduled = true;
    const flush = () => {
      this.acksScheduled = false;
      this.recordQueuedAcks();
    };
    if (this.config.ackBatchWindowMs > 0) setTimeout(flush, this.config.ackBatchWindowMs).unref();
    else setImmediate(flush);
  }

  /**
   * Hands every ack received here and not yet recorded to the store now, ACK_BATCH_MAX per call:
   * at the end of a window, and before a read that must see them (an inbox read, a notification's
   * status), which then goes to Redis behind their writes.
   */
  recordQueuedAcks(): void {
    while (this.acks.length) {
      const batch = this.acks.splice(0, ACK_BATCH_MAX);
      const write = this.store.ackMany(batch, this.clock.now()).then(
        () => undefined,
        (err: Error) => {
          // The receipts are lost, not the notifications: they stay pending and are sent again (same id).
          const which = batch.slice(0, 5).map((a) => `${a.payload.id} by ${a.deviceId}`).join(', ');
          this.logger.warn(`${batch.length} ack(s) not recorded (${which}${batch.length > 5 ? ', ...' : ''}): ${err.message}`);
        },
      );
      this.ackWrites.set(write, true);
      void write.then(() => {
        this.ackWrites.delete(write);
        // What gathered meanwhile goes out now, as one batch.
        if (this.ackWrites.size === 0) this.recordQueuedAcks();
      });
    }
  }
}

/** A disconnect listener that closes the socket's outbox (Socket.IO calls it with the socket as `this`). */
function outboxCloser(outboxes: WeakMap<DeviceSocket, Outbox>): (this: DeviceSocket) => void {
  return function (this: DeviceSocket): void {
    outboxes.get(this)?.close();
  };
}
