import { eventIdTime } from '../event.types';
import { MEMORY_EVENT_LOG_MAX } from '../memory-event-log';
import { Claim, ClaimResult, EnqueueResult, QueuedEvent, Settlement, WebhookQueue, groupOf } from './webhook-queue';

interface KeyState {
  group: number;
  events: QueuedEvent[];
  due: number;
  attempts: number;
  token?: string;
}

/**
 * The embedded store's webhook queue: the same rules as Redis's, in this process (the only
 * instance; one partition, so one group, though it keeps keys of several apart for the tests). It holds at most `maxQueued` events (as many as the embedded log): past that, new
 * events are refused (and counted as dropped) rather than growing the process without bound.
 */
export class MemoryWebhookQueue extends WebhookQueue {
  private readonly keys = new Map<string, KeyState>();
  private queued = 0;

  constructor(private readonly maxQueued = MEMORY_EVENT_LOG_MAX) {
    super();
  }

  /** Partition -> cursor (one partition in the embedded store; any number here, for the shared tests). */
  private readonly positions = new Map<number, string>();
  private disabled = false;

  async cursor(p: number, start: () => Promise<string>): Promise<string> {
    const stored = this.positions.get(p);
    if (stored !== undefined) return stored;
    const position = await start();
    if (!this.positions.has(p)) this.positions.set(p, position);
    return this.positions.get(p)!;
  }

  async enqueue(p: number, expected: string, position: string, events: readonly QueuedEvent[], now: number): Promise<EnqueueResult> {
    if (this.positions.get(p) !== expected) return { moved: true };
    let refused = 0;
    for (const e of events) {
      if (this.queued >= this.maxQueued) {
        refused++;
        continue;
      }
      this.queued++;
      let state = this.keys.get(e.key);
      if (!state) {
        state = { group: groupOf(p), events: [], due: now, attempts: 0 };
        this.keys.set(e.key, state);
      }
      state.events.push(e);
    }
    this.positions.set(p, position);
    return { moved: false, refused };
  }

  async claim(g: number, tokenBase: string, now: number, max: number, leaseUntil: number): Promise<ClaimResult> {
    const claims: Claim[] = [];
    let nextDue: number | undefined;
    for (const [key, state] of this.keys) {
      if (state.group !== g) continue;
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
      claims.push({ group: g, key, token: state.token, id: head.id, body: head.body, attempts: state.attempts });
    }
    return { claims, nextDue };
  }

  async renew(claims: readonly Pick<Claim, 'group' | 'key' | 'token'>[], leaseUntil: number): Promise<void> {
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

  async isDisabled(): Promise<boolean> {
    return this.disabled;
  }

  async backlog(groups: readonly number[]): Promise<{ oldest?: number; keys: number }> {
    let oldest: number | undefined;
    let keys = 0;
    for (const state of this.keys.values()) {
      if (!groups.includes(state.group)) continue;
      keys++;
      oldest = Math.min(oldest ?? Infinity, eventIdTime(state.events[0]!.id));
    }
    return { oldest, keys };
  }
}
