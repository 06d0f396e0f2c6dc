/** One event as queued for a URL: `key` is what orders it (its device, else its user). */
export interface QueuedEvent {
  key: string;
  id: string;
  /** The envelope's JSON, exactly the body POSTed. */
  body: string;
}

/** The head event of one key, taken by one instance until `settle` or its lease runs out. */
export interface Claim {
  key: string;
  token: string;
  id: string;
  body: string;
  /** Failed attempts of this event so far. */
  attempts: number;
}

/** What became of a claimed event: `done` (delivered or dropped) lets the key's next event go. */
export type Outcome = { kind: 'done' } | { kind: 'retry'; at: number; attempts: number };

export interface Settlement {
  key: string;
  token: string;
  id: string;
  outcome: Outcome;
}

/** `held: false`: the caller lost the intake lease and nothing was written; `refused`: events left out for lack of room. */
export type EnqueueResult = { held: false } | { held: true; refused: number };

export interface ClaimResult {
  claims: Claim[];
  /** A 410 stopped this URL (on any instance) since the gateway was started. */
  disabled: boolean;
  /** When the earliest key not taken now becomes due (epoch ms), if any is queued. */
  nextDue?: number;
}

/**
 * One webhook URL's delivery state, shared by every instance (Redis) or held by the process
 * (embedded store). Events are copied from the event log in log order by the one instance holding
 * the intake lease, into one FIFO per key; any instance takes due keys, one event per key at a
 * time, under a lease it renews while the POST runs. A key waiting for a retry is just due later,
 * so it holds up nobody else. Every step is atomic, so a crash anywhere loses nothing: the worst
 * is that an event is sent again.
 */
export abstract class WebhookQueue {
  /** Takes the intake lease, or keeps it when `owner` holds it; true while `owner` holds it. */
  abstract holdIntake(owner: string, now: number, leaseMs: number): Promise<boolean>;
  /**
   * The log position up to which events were queued. When there is none (a URL seen for the first
   * time), the log's newest id is stored first, in one atomic step with reading it: the URL gets
   * every event recorded after that.
   */
  abstract cursor(): Promise<string>;
  /** Appends events (in log order) and moves the cursor, if `owner` still holds the intake lease. */
  abstract enqueue(owner: string, cursor: string, events: readonly QueuedEvent[], now: number): Promise<EnqueueResult>;
  /** Takes up to `max` due keys until `leaseUntil`. */
  abstract claim(tokenBase: string, now: number, max: number, leaseUntil: number): Promise<ClaimResult>;
  /** Extends the leases of claims still held. */
  abstract renew(claims: readonly Pick<Claim, 'key' | 'token'>[], leaseUntil: number): Promise<void>;
  /** Applies outcomes of claims still held (others were taken over: ignored). */
  abstract settle(settlements: readonly Settlement[], now: number): Promise<void>;
  abstract setDisabled(disabled: boolean): Promise<void>;
  /** The oldest queued event's time (epoch ms) and how many keys have events queued. */
  abstract backlog(): Promise<{ oldest?: number; keys: number }>;
}
