import type { PushOutcome } from '../channel/device-channel';
import type { DeviceSocket } from '../channel/socket-events';
import { TransientMap } from '../common/transient-map';
import type { Deliverable } from './notification.types';

/** Pending notifications read per inbox page when catching up. */
export const CATCH_UP_PAGE = 100;
/** After a failed inbox read (Redis unavailable), the next attempt waits this long. */
export const RETRY_READ_MS = 1_000;
/** A full socket is looked at this often: has it drained (send more), or stayed full too long (end it)? */
export const FULL_CHECK_MS = 100;

/** What an outbox needs from the rest of the gateway. */
export interface OutboxPort {
  maxBufferedBytes: number;
  slowConsumerGraceMs: number;
  now(): number;
  /** Bytes the transport holds for this socket. */
  buffered(socket: DeviceSocket): number;
  isOpen(socket: DeviceSocket): boolean;
  /** `fromInbox`: read back from the inbox (on connect, or catching up) rather than sent live. `onOutcome`: once, on the ack or the timeout. */
  emit(socket: DeviceSocket, notification: Deliverable, fromInbox: boolean, onOutcome: (outcome: PushOutcome) => void): void;
  /** Pending notifications of the device, oldest first. */
  readPending(deviceId: string, limit: number): Promise<Deliverable[]>;
  /** The emit settled (acked or timed out): record it. `fromInbox` as it was emitted. */
  settled(socket: DeviceSocket, notification: Deliverable, fromInbox: boolean, outcome: PushOutcome): void;
  /** The socket just became full: sending to it pauses. */
  onFull(socket: DeviceSocket): void;
  endSlowConsumer(socket: DeviceSocket): void;
}

/**
 * Paces what one socket is sent. Everything sent is already in the device's inbox, so nothing has
 * to be held here: what the socket cannot take now is simply not sent yet, and read again from the
 * inbox when the socket has room. The socket holds at most maxBufferedBytes: bytes in its
 * transport plus notifications sent and not yet acked (their ack callbacks, and the payloads the
 * client still has to process). A socket that stays full for slowConsumerGraceMs is ended.
 *
 * Order: while anything may be waiting in the inbox (`behind`), live notifications are not sent
 * directly; the next inbox read brings them, oldest first.
 */
export class Outbox {
  /** Ids sent and not yet settled, and their bytes. */
  private readonly inFlight = new TransientMap<string, number>();
  private inFlightBytes = 0;
  /** The inbox may hold something this socket has not been sent. */
  private behind = true;
  private reading = false;
  private fullSince?: number;
  private graceTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  /** The first inbox page, read as the session was being recorded (see prefetch). */
  private prefetched?: Promise<Deliverable[]>;

  constructor(
    private readonly socket: DeviceSocket,
    private readonly deviceId: string,
    private readonly port: OutboxPort,
  ) {}

  /** Bytes this socket holds now, as the limit counts them. */
  get held(): number {
    return this.port.buffered(this.socket) + this.inFlightBytes;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Reads the first inbox page now, while the session is being recorded (the read follows the
   * presence write on the same connection, so it sees the inbox as of that write), and sends
   * nothing until start(). Notifications offered meanwhile make it read again after that page.
   */
  prefetch(): void {
    if (this.reading || this.closed) return;
    this.reading = true;
    this.behind = false;
    const read = this.port.readPending(this.deviceId, CATCH_UP_PAGE);
    read.catch(() => undefined); // handled in catchUp, or moot if the session never starts
    this.prefetched = read;
  }

  /** Starts with what the inbox holds (the session just became ready). */
  start(): void {
    void this.catchUp();
  }

  /** A notification just stored for this device. */
  offer(notification: Deliverable): void {
    if (this.closed || this.inFlight.has(notification.payload.id)) return;
    if (this.behind || this.reading) {
      this.behind = true;
      return;
    }
    this.trySend(notification);
  }

  /** The inbox may have changed in a way this socket was not told (an uncertain write): read it. */
  recheck(): void {
    this.behind = true;
    this.resume();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.graceTimer);
    clearTimeout(this.retryTimer);
  }

  private trySend(notification: Deliverable, fromInbox = false): boolean {
    if (!this.port.isOpen(this.socket)) {
      this.close();
      return false;
    }
    const held = this.held;
    // One notification always fits an empty socket, however large MAX_PAYLOAD_BYTES allows it to be.
    if (held > 0 && held + notification.bytes > this.port.maxBufferedBytes) {
      this.behind = true;
      this.markFull();
      return false;
    }
    const { id } = notification.payload;
    this.inFlight.set(id, notification.bytes);
    this.inFlightBytes += notification.bytes;
    this.port.emit(this.socket, notification, fromInbox, (outcome) => {
      this.inFlight.delete(id);
      this.inFlightBytes -= notification.bytes;
      this.port.settled(this.socket, notification, fromInbox, outcome);
      this.resume();
    });
    return true;
  }

  /** Something left the socket (an ack, a timeout): catch up once it is at most half full. */
  private resume(): void {
    if (this.closed || !this.behind || this.reading || this.retryTimer) return;
    if (this.held <= this.port.maxBufferedBytes / 2) void this.catchUp();
  }

  private async catchUp(): Promise<void> {
    let first = this.prefetched;
    this.prefetched = undefined;
    this.reading = true;
    // A prefetched page was read from the moment it was issued: what came since set `behind`.
    if (!first) this.behind = false;
    this.clearFull();
    try {
      for (let more = true; more && !this.closed; ) {
        const limit = this.inFlightCount + CATCH_UP_PAGE;
        // Nothing is in flight before start(), so the prefetched page was read with this same limit.
        const page = await (first ?? this.port.readPending(this.deviceId, limit));
        first = undefined;
        let sent = 0;
        for (const notification of page) {
          if (this.closed || this.inFlight.has(notification.payload.id)) continue;
          if (!this.trySend(notification, true)) break;
          sent++;
        }
        more = page.length === limit && sent > 0 && !this.behind;
      }
    } catch {
      // Still stored: read again a little later, or on the next connection.
      this.behind = true;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.resume();
      }, RETRY_READ_MS);
      this.retryTimer.unref();
    } finally {
      this.reading = false;
    }
    // Live notifications that arrived while reading are in the inbox: fetch them now.
    this.resume();
  }

  private markFull(): void {
    if (this.fullSince !== undefined) return;
    this.fullSince = this.port.now();
    this.port.onFull(this.socket);
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    this.graceTimer = setTimeout(() => this.checkFull(), Math.min(FULL_CHECK_MS, this.port.slowConsumerGraceMs));
    this.graceTimer.unref();
  }

  private clearFull(): void {
    this.fullSince = undefined;
    clearTimeout(this.graceTimer);
  }

  /** Transports do not say when their buffer drained, so a full socket is looked at until it did or its grace ran out. */
  private checkFull(): void {
    if (this.closed || this.fullSince === undefined) return;
    if (this.held <= this.port.maxBufferedBytes / 2) {
      this.resume();
      return;
    }
    if (this.port.now() - this.fullSince >= this.port.slowConsumerGraceMs) {
      this.close();
      this.port.endSlowConsumer(this.socket);
      return;
    }
    this.scheduleCheck();
  }
}
