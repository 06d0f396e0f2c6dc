import { FakeClock } from '../../test/support/fake-clock';
import type { PushOutcome } from '../channel/device-channel';
import type { DeviceSocket } from '../channel/socket-events';
import type { Deliverable } from './notification.types';
import { CATCH_UP_PAGE, Outbox, OutboxPort } from './outbox';

const LIMIT = 10_000;
const GRACE = 5_000;

/** A socket played by the test: an inbox it reads from, emits the test settles, bytes its transport holds. */
class Harness {
  readonly clock = new FakeClock();
  readonly socket = { data: { session: {} } } as unknown as DeviceSocket;
  inbox: Deliverable[] = [];
  transportBytes = 0;
  open = true;
  failReads = 0;
  ended = false;
  readonly emitted: { n: Deliverable; fromInbox: boolean; settle: (acked: boolean) => Promise<void> }[] = [];
  readonly port: OutboxPort = {
    maxBufferedBytes: LIMIT,
    slowConsumerGraceMs: GRACE,
    now: () => this.clock.now(),
    buffered: () => this.transportBytes,
    isOpen: () => this.open,
    emit: (_socket, n, fromInbox, onOutcome: (outcome: PushOutcome) => void) => {
      this.emitted.push({
        n,
        fromInbox,
        settle: async (acked) => {
          if (acked) this.inbox = this.inbox.filter((x) => x !== n); // an ack takes it out of the inbox
          onOutcome(acked ? { acked: true, latencyMs: 1 } : { acked: false });
          await flush();
        },
      });
    },
    readPending: async (_deviceId, limit) => {
      if (this.failReads > 0) {
        this.failReads--;
        throw new Error('Redis unavailable');
      }
      return this.inbox.slice(0, limit);
    },
    settled: () => undefined,
    onFull: () => undefined,
    endSlowConsumer: () => {
      this.ended = true;
    },
  };

  /** Stores a notification of `bytes` in the inbox, as a publish does before offering it. */
  store(bytes = 1_000): Deliverable {
    const n = { payload: { id: `n${this.inbox.length}-${Math.random()}`, data: {}, createdAt: 0 }, bytes };
    this.inbox.push(n);
    return n;
  }

  ids(): string[] {
    return this.emitted.map((e) => e.n.payload.id);
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Outbox: what one socket is sent, and when it is too slow', () => {
  let h: Harness;
  let outbox: Outbox;

  beforeEach(async () => {
    h = new Harness();
    outbox = new Outbox(h.socket, 'd1', h.port);
  });
  afterEach(() => {
    outbox.close();
    jest.useRealTimers();
  });

  it('starts with the inbox, oldest first, then sends live notifications as they come', async () => {
    const queued = [h.store(), h.store()];
    outbox.start();
    await flush();
    expect(h.ids()).toEqual(queued.map((n) => n.payload.id));
    expect(h.emitted.every((e) => e.fromInbox)).toBe(true);
    const live = h.store();
    outbox.offer(live);
    expect(h.ids().at(-1)).toBe(live.payload.id);
    expect(h.emitted.at(-1)?.fromInbox).toBe(false);
    outbox.offer(live); // already on the wire: not twice
    expect(h.emitted).toHaveLength(3);
  });

  it('stops at SOCKET_MAX_BUFFERED_BYTES (transport plus unacked), and catches up from the inbox in order once half drained', async () => {
    outbox.start();
    await flush();
    const all = Array.from({ length: 15 }, () => h.store(1_000));
    for (const n of all) outbox.offer(n);
    expect(h.emitted).toHaveLength(10); // 10 x 1 000 bytes in flight: full
    expect(outbox.held).toBe(10_000);
    for (const e of h.emitted.slice(0, 4)) await e.settle(true);
    expect(h.emitted).toHaveLength(10); // 6 000 held: more than half, still waiting
    await h.emitted.at(4)!.settle(true); // 5 000: half drained, the rest comes from the inbox, in order
    await flush();
    expect(h.ids()).toEqual(all.map((n) => n.payload.id));
  });

  it('counts the transport buffer too: a socket whose bytes sit in the transport is full', async () => {
    outbox.start();
    await flush();
    h.transportBytes = 9_500;
    outbox.offer(h.store(1_000));
    expect(h.emitted).toHaveLength(0);
  });

  it('always lets one notification through an empty socket, however large', async () => {
    outbox.start();
    await flush();
    outbox.offer(h.store(LIMIT * 3));
    expect(h.emitted).toHaveLength(1);
  });

  it('ends a socket that stays full past the grace, and only then', async () => {
    jest.useFakeTimers();
    outbox.start();
    await jest.advanceTimersByTimeAsync(0);
    h.transportBytes = LIMIT; // it stopped reading
    outbox.offer(h.store());
    h.clock.advance(GRACE - 1);
    await jest.advanceTimersByTimeAsync(GRACE - 1);
    expect(h.ended).toBe(false);
    h.clock.advance(1);
    await jest.advanceTimersByTimeAsync(200);
    expect(h.ended).toBe(true);
  });

  it('lets a socket that drains in time get the rest, without ending it', async () => {
    jest.useFakeTimers();
    outbox.start();
    await jest.advanceTimersByTimeAsync(0);
    h.transportBytes = LIMIT;
    const waiting = h.store();
    outbox.offer(waiting);
    h.clock.advance(GRACE / 2);
    await jest.advanceTimersByTimeAsync(GRACE / 2);
    h.transportBytes = 0; // it read again
    await jest.advanceTimersByTimeAsync(200);
    expect(h.ids()).toEqual([waiting.payload.id]);
    h.clock.advance(GRACE);
    await jest.advanceTimersByTimeAsync(GRACE);
    expect(h.ended).toBe(false);
  });

  it('keeps order when live notifications arrive while it reads the inbox', async () => {
    const first = h.store();
    outbox.start(); // reading
    const live = h.store();
    outbox.offer(live); // waits for the read: the inbox holds it behind `first`
    await flush();
    await flush();
    expect(h.ids()).toEqual([first.payload.id, live.payload.id]);
  });

  it('reads the inbox page by page beyond what is in flight', async () => {
    const all = Array.from({ length: CATCH_UP_PAGE * 2 + 5 }, () => h.store(10));
    outbox.start();
    for (let i = 0; i < 5; i++) await flush();
    expect(h.ids()).toEqual(all.map((n) => n.payload.id));
  });

  it('tries again later when the inbox cannot be read, and on recheck', async () => {
    jest.useFakeTimers();
    h.store();
    h.failReads = 1;
    outbox.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(h.emitted).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(h.emitted).toHaveLength(1);
    const missed = h.store(); // stored by a write whose answer was lost: nobody offered it
    outbox.recheck();
    await jest.advanceTimersByTimeAsync(0);
    expect(h.ids().at(-1)).toBe(missed.payload.id);
  });

  it('sends nothing to a socket that closed', async () => {
    outbox.start();
    await flush();
    h.open = false;
    outbox.offer(h.store());
    expect(h.emitted).toHaveLength(0);
  });
});
