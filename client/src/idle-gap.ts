import type { Socket } from 'socket.io-client';

/** A gap counts as idle when it lasted at least this share of the interval. */
export const IDLE_SHARE = 0.95;

/**
 * Whether the link really idled before a heartbeat: the tuner may only learn from a gap in which
 * nothing crossed the link. Any packet keeps a NAT mapping alive (an Engine.IO ping from the
 * server and its pong, a notification, its ack), so a beat after such a gap proves nothing about
 * how long the mapping survives idle. Counts every Engine.IO packet in both directions on one
 * connection; `mark()` opens a gap (at `ready` and at each heartbeat ack).
 */
export class IdleGap {
  private packets = 0;
  private markedPackets = 0;
  private markedAt: number;
  /** When the last packet crossed the link, either way. */
  lastTrafficAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.markedAt = this.lastTrafficAt = now();
  }

  /** Counts the packets of `socket`'s engine from the moment the transport is open. */
  watch(socket: Socket): void {
    const count = () => {
      this.packets++;
      this.lastTrafficAt = this.now();
    };
    socket.io.on('open', () => {
      socket.io.engine.on('packet', count);
      socket.io.engine.on('packetCreate', count);
    });
  }

  /** A gap starts now (the previous heartbeat's ack, or `ready`, just arrived). */
  mark(): void {
    this.markedPackets = this.packets;
    this.markedAt = this.now();
  }

  /** How long the link has idled since the mark: 0 if anything crossed it meanwhile. */
  idleMs(): number {
    return this.packets === this.markedPackets ? this.now() - this.markedAt : 0;
  }
}
