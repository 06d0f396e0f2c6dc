import type { Socket as NetSocket } from 'node:net';
import WebSocket from 'ws';

/** One Socket.IO packet as the raw client sees it. */
export interface RawEvent {
  event: string;
  payload: unknown;
  /** The server asked for an ack with this id. */
  ackId?: number;
}

/**
 * A device speaking Engine.IO 4 / Socket.IO 5 by hand over a bare WebSocket, so a test can do
 * what polite clients never do: stop reading its TCP socket while it keeps writing, send
 * malformed frames, or flood. Only the pieces the tests need are implemented.
 */
export class RawDevice {
  readonly events: RawEvent[] = [];
  readonly closed: Promise<void>;
  private nextAck = 1;
  private readonly acks = new Map<number, (reply: unknown) => void>();
  private readonly waiters: { match: (e: RawEvent) => boolean; resolve: (e: RawEvent) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data: Buffer) => this.onFrame(data.toString()));
  }

  /** Connects with `auth` and resolves once `ready` arrived. */
  static async connect(url: string, auth: Record<string, unknown>, headers: Record<string, string> = {}): Promise<RawDevice> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers });
    const device = new RawDevice(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(`40${JSON.stringify(auth)}`);
    await device.next('ready');
    return device;
  }

  /** The kernel socket under the WebSocket: pause() it and the client stops reading. */
  get tcp(): NetSocket {
    return (this.ws as unknown as { _socket: NetSocket })._socket;
  }

  /** Stops reading: whatever the server sends piles up in its buffers, while this side can still write. */
  pause(): void {
    this.tcp.pause();
  }

  resume(): void {
    this.tcp.resume();
  }

  /** Sends an event; with `ack`, resolves with the server's ack payload. */
  emit(event: string, payload?: unknown): void {
    this.ws.send(`42${JSON.stringify(payload === undefined ? [event] : [event, payload])}`);
  }

  emitWithAck(event: string, payload?: unknown): Promise<unknown> {
    const id = this.nextAck++;
    const reply = new Promise<unknown>((resolve) => this.acks.set(id, resolve));
    this.ws.send(`42${id}${JSON.stringify(payload === undefined ? [event] : [event, payload])}`);
    return reply;
  }

  /** Resolves with the next event of that name (one already received and not yet taken counts). */
  next(event: string, timeoutMs = 5_000): Promise<RawEvent> {
    const match = (e: RawEvent) => e.event === event;
    const seen = this.events.find(match);
    if (seen) {
      this.events.splice(this.events.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  ack(e: RawEvent): void {
    if (e.ackId !== undefined) this.ws.send(`43${e.ackId}[]`);
  }

  close(): void {
    this.ws.terminate();
  }

  private onFrame(frame: string): void {
    if (frame === '2') return this.ws.send('3'); // Engine.IO ping
    const packet = /^4([23])(\d*)(.*)$/s.exec(frame);
    if (!packet) return;
    const [, type, id, body] = packet;
    const args = JSON.parse(body ?? '[]') as unknown[];
    if (type === '3') {
      this.acks.get(Number(id))?.(args[0]);
      this.acks.delete(Number(id));
      return;
    }
    const e: RawEvent = { event: String(args[0]), payload: args[1], ackId: id ? Number(id) : undefined };
    const waiter = this.waiters.find((w) => w.match(e));
    if (waiter) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(e);
    } else {
      this.events.push(e);
    }
  }
}
