import { eventIdTime } from '../event.types';
import { MEMORY_EVENT_LOG_MAX } from '../memory-event-log';
import { Claim, ClaimResult, EnqueueResult, QueuedEvent, Settlement, WebhookQueue } from './webhook-queue';

interface KeyState {
  events: QueuedEvent[];
  due: number;
  attempts: number;
  token?: string;
}

/**
 * The embedded store's webhook queue: the same rules as Redis's, in this process (the only
 * instance). It holds at most `maxQueued` events (as many as the embedded log): past that, new
 * events are refused (and counted as dropped) rather than growing the process without bound.
 */
export class MemoryWebhookQueue extends WebhookQueue {
  private readonly keys = new Map<string, KeyState>();
  private queued = 0;

  /** `lastId`: the log's newest id, where a URL starts. */
  constructor(
    private readonly lastId: () => string = () => '0-0',
    private readonly maxQueued = MEMORY_EVENT_LOG_MAX,
  ) {
    super();
  }

  private position: string | undefined;
  private disabled = false;

  async holdIntake(): Promise<boolean> {
    return true;
  }

  async cursor(): Promise<string> {
    this.position ??= this.lastId();
    return this.position;
  }

  async enqueue(_owner: string, cursor: string, events: readonly QueuedEvent[], now: number): Promise<EnqueueResult> {
    let refused = 0;
    for (const e of events) {
      if (this.queued >= this.maxQueued) {
        refused++;
        continue;
      }
      this.queued++;
      let state = this.keys.get(e.key);
      if (!state) {
        state = { events: [], due: now, attempts: 0 };
        this.keys.set(e.key, state);
      }
      state.events.push(e);
    }
    this.position = cursor;
    return { held: true, refused };
  }

  async claim(tokenBase: string, now: number, max: number, leaseUntil: number): Promise<ClaimResult> {
    const claims: Claim[] = [];
    let nextDue: number | undefined;
    if (!this.disabled) {
      for (const [key, state] of this.keys) {
        if (state.due > now) {
          nextDue = Math.min(nextDue ?? Infinity, state.due);
          continue;
        }
        if (claims.length >= max) {
          nextDue = now;
          continue;
        }
        const head = state.events[0]!;
        state.token = `${tokenBase}:${claims.length}`;
        state.due = leaseUntil;
        claims.push({ key, token: state.token, id: head.id, body: head.body, attempts: state.attempts });
      }
    }
    return { claims, disabled: this.disabled, nextDue };
  }

  async renew(claims: readonly Pick<Claim, 'key' | 'token'>[], leaseUntil: number): Promise<void> {
    for (const c of claims) {
      const state = this.keys.get(c.key);
      if (state?.token === c.token) state.due = leaseUntil;
    }
  }

  async settle(settlements: readonly Settlement[], now: number): Promise<void> {
    for (const s of settlements) {
      const state = this.keys.get(s.key);
      if (!state || state.token !== s.token || state.events[0]?.id !== s.id) continue;
      state.token = undefined;
      if (s.outcome.kind === 'retry') {
        state.attempts = s.outcome.attempts;
        state.due = s.outcome.at;
        continue;
      }
      state.events.shift();
      this.queued--;
      state.attempts = 0;
      state.due = now;
      if (state.events.length === 0) this.keys.delete(s.key);
    }
  }

  async setDisabled(disabled: boolean): Promise<void> {
    this.disabled = disabled;
  }

  async backlog(): Promise<{ oldest?: number; keys: number }> {
    let oldest: number | undefined;
    for (const state of this.keys.values()) oldest = Math.min(oldest ?? Infinity, eventIdTime(state.events[0]!.id));
    return { oldest, keys: this.keys.size };
  }
}
