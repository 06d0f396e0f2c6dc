/** What a local push server answers to the next request. */
export type ScriptedReply =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** close the connection without an answer (a provider that drops requests) */
  | { drop: true };

/**
 * The programmable part of every local push server: replies queued for the next requests (each used
 * once, in order), and a `down` switch under which every request is dropped. With neither, the
 * server checks the request and answers like the real service.
 */
export class ReplyScript {
  private readonly queue: ScriptedReply[] = [];
  private isDown = false;
  private held?: { promise: Promise<void>; resolve: () => void };

  /** The next requests get these replies, one each, in order. */
  reply(...replies: ScriptedReply[]): void {
    this.queue.push(...replies);
  }

  /** While down, every request's connection is closed without an answer. */
  down(on = true): void {
    this.isDown = on;
  }

  /** Answers wait (requests still arrive and are recorded) until `release()`. */
  hold(): void {
    if (this.held) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.held = { promise, resolve };
  }

  release(): void {
    this.held?.resolve();
    this.held = undefined;
  }

  /** Resolves when answers may go out. */
  gate(): Promise<void> {
    return this.held?.promise ?? Promise.resolve();
  }

  next(): ScriptedReply | undefined {
    if (this.isDown) return { drop: true };
    return this.queue.shift();
  }
}

/** Waits until `count()` reaches `n`, polling; fails with `what` after `timeoutMs`. */
export async function waitForCount(count: () => number, n: number, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count() < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} ${what} (have ${count()})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
