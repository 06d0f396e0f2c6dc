import { GROUP_SIZE } from '../../redis/partitions';

/** One event as queued for a URL: `key` is what orders it (its device, else its user). */
export interface QueuedEvent {
  key: string;
  id: string;
  /** The envelope's JSON, exactly the body POSTed. */
  body: string;
}

/** The head event of one key, taken by one instance until `settle` or its lease runs out. */
export interface Claim {
  /** The lease group whose queue holds the key. */
  group: number;
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
  group: number;
  key: string;
  token: string;
  id: string;
  outcome: Outcome;
}

/** `moved`: the partition's cursor was not where the caller thought (another instance copied): nothing written; `refused`: events left out for lack of room. */
export type EnqueueResult = { moved: true } | { moved: false; refused: number };

export interface ClaimResult {
  claims: Claim[];
  /** When the earliest key of the group not taken now becomes due (epoch ms), if any is queued. */
  nextDue?: number;
}

/**
 * One webhook URL's delivery state, shared by every instance (Redis) or held by the process
 * (embedded store), in one queue per lease group (16 partitions; one group with one partition).
 * The holder of a group's lease copies each of its partitions' event streams, in stream order,
 * into one FIFO per ordering key (a device's events all come from its partition, so its FIFO is in
 * its stream's order), and takes due keys there, one event per key at a time, under a claim lease
 * it renews while the POST runs. A key waiting for a retry is just due later, so it holds up nobody
 * else. Every step is atomic and none depends on holding the partition lease, so a crash or a
 * lease handover anywhere loses nothing: the worst is that an event is sent again.
 */
export abstract class WebhookQueue {
  /**
   * The last entry of partition p's stream copied. When there is none (a URL seen for the first
   * time), `start` (the stream's newest entry, or 0-0) is stored first: the URL gets every event
   * recorded after it.
   */
  abstract cursor(p: number, start: () => Promise<string>): Promise<string>;
  /** Appends partition p's events (in stream order) and moves its cursor from `expected` to `position`, if it is still at `expected`. */
  abstract enqueue(p: number, expected: string, position: string, events: readonly QueuedEvent[], now: number): Promise<EnqueueResult>;
  /** Takes up to `max` due keys of group g until `leaseUntil`. */
  abstract claim(g: number, tokenBase: string, now: number, max: number, leaseUntil: number): Promise<ClaimResult>;
  /** Extends the leases of claims still held. */
  abstract renew(claims: readonly Pick<Claim, 'group' | 'key' | 'token'>[], leaseUntil: number): Promise<void>;
  /** Applies outcomes of claims still held (others were taken over: ignored). */
  abstract settle(settlements: readonly Settlement[], now: number): Promise<void>;
  abstract setDisabled(disabled: boolean): Promise<void>;
  /** Whether a 410 stopped this URL (on any instance) since the gateway was last started. */
  abstract isDisabled(): Promise<boolean>;
  /** The oldest queued event's time (epoch ms) and how many keys have events queued, over the groups given. */
  abstract backlog(groups: readonly number[]): Promise<{ oldest?: number; keys: number }>;
}

/** The lease group of partition p. */
export function groupOf(p: number): number {
  return Math.floor(p / GROUP_SIZE);
}
