import { NotificationPayload } from '../channel/socket-events';
import type { DueIndex } from '../redis/due-partitions';
import type { PushFailureReason, PushProviderName } from '../push/push.types';
import { Deliverable, DueClaim, FallbackResult, NotificationStatus, PublishRequest, PublishResult, TargetFallback, TargetState } from './notification.types';

/** One device's ack of one notification. */
export interface Ack {
  payload: Pick<NotificationPayload, 'id' | 'collapseKey'>;
  deviceId: string;
  /**
   * The user of the session that acked, when the caller knows it: the `notification.delivered`
   * event names it without the store looking the device up.
   */
  userId?: string;
  /**
   * False when what was acked was sent live (by a publish, which set the ack deadline of its
   * batch), not read back from the inbox (which sets one of its own, see armAckDeadlines): the
   * store need not look for that one. Unknown (undefined) looks.
   */
  fromInbox?: boolean;
}

/** Targets per batch in the due-time index: one entry stands for up to this many targets of one notification. */
export const DUE_BATCH = 500;

/**
 * Per-device inboxes and per-target receipts, in Redis or in process memory; both keep the same
 * rules, checked by one shared test suite:
 * - `publish` writes each target once (status, inbox entry), deciding who is online from presence
 *   in the same step as the target's write. The embedded store writes a publish in one step; Redis
 *   writes one part per partition (one step each, all sent together), so a failed publish may have
 *   written some parts, and a retry under the same Idempotency-Key completes it without duplicates;
 * - an inbox holds a device's pending notifications oldest first, at most `maxInbox` (the oldest
 *   is evicted, status `expired`, reason `inbox_full`); a newer one with the same collapse key
 *   replaces a pending one (status `replaced`);
 * - a notification is pending until acked (`delivered`) or past its effective expiry (`expired`,
 *   never handed out again);
 * - each of these changes that happened, and nothing else, is recorded as a `notification.*`
 *   event in the event log in the same atomic step (`delivered` on ack, `expired` for `offline`
 *   and `inbox_full` at publish, `expired` `ttl` and `unacked` once per target from the index);
 * - deadlines live in a due-time index in the store, not in a timer of one process: the ack
 *   deadline of targets sent a notification (at publish, per batch of DUE_BATCH targets; after a
 *   redelivery from the inbox, per target), each notification's ttl expiry (per batch), and native
 *   pushes to send (per batch). `claimDue` takes what is due atomically, so whichever instance
 *   claims fires each deadline once; pushes are leased, so a claimant that dies leaves them to
 *   the next claim after the lease.
 */
export abstract class NotificationStore {
  abstract publish(request: PublishRequest): Promise<PublishResult>;

  /**
   * Whether a publish to `targets` device ids (without an Idempotency-Key) can take a rate-limit
   * admission in its write (PublishRequest.admit): where it is one script call on the limiter's
   * Redis. The embedded store cannot (its limiter counts in process: nothing to save).
   */
  foldsAdmission(_targets: number): boolean {
    return false;
  }

  /**
   * Whether a publish (without an Idempotency-Key) to users and `deviceIds` device ids can look
   * the users' devices up in its write (PublishRequest.users), and for how many targets in all at
   * most (its `maxTargets`); 0 when it cannot. Where the users' device lists and the write are on
   * one Redis it saves the lookup's round trip before the write. The embedded store cannot (it
   * does not hold them).
   */
  foldsUsers(_deviceIds: number): number {
    return 0;
  }

  /** The device's pending, unexpired notifications, oldest first. */
  abstract pending(deviceId: string, now: number, limit: number): Promise<Deliverable[]>;

  /** Records a device's ack; true if it changed the target's status. */
  async ack(payload: Pick<NotificationPayload, 'id' | 'collapseKey'>, deviceId: string, now: number): Promise<boolean> {
    const [changed] = await this.ackMany([{ payload, deviceId }], now);
    return changed === true;
  }

  /**
   * Records several acks in one step, in order, as `ack` would one after the other; per ack, true
   * if it changed the target's status.
   */
  abstract ackMany(acks: readonly Ack[], now: number): Promise<boolean[]>;

  abstract status(id: string, now: number): Promise<NotificationStatus | null>;

  /** These devices were just sent these notifications from their inboxes: each target's ack deadline (kept if one is set already). */
  abstract armAckDeadlines(targets: readonly { id: string; deviceId: string }[], deadline: number, now: number): Promise<void>;

  /**
   * Takes due entries of the index, oldest first, until about `limit` targets were worked on (at
   * least one entry; `more` says whether more may be due): ack deadlines (`notification.unacked` once per
   * target still waiting for delivery; a native push for it when the policy is `unacked`), ttl
   * expiries (`notification.expired` `ttl` once per target still pending; it leaves the inbox), and
   * native pushes whose lease ran out (leased to the caller until now + leaseMs).
   * `partition`: whose index (Redis keeps one per partition, README "Redis key layout"; 0 when there is one).
   */
  abstract claimDue(now: number, limit: number, leaseMs: number, partition?: number): Promise<DueClaim>;

  /** The per-partition index claimDue starts from, for DuePartitions; none: every partition is claimed in. */
  dueIndexes(_now: number): readonly DueIndex[] {
    return [];
  }

  /** The claimant is still sending these pushes: keeps them its own until `until`. */
  abstract renewFallback(keys: readonly string[], until: number): Promise<void>;

  /**
   * Records native push outcomes (the first per target wins) and, with `done`, releases the job.
   * A `gone` result deletes the device's registration if it is still the one that was used.
   */
  abstract recordFallback(key: string, results: readonly FallbackResult[], done: boolean): Promise<void>;
}

/** "status:at[:provider[:reason]]", how both stores keep a target's native push outcome. */
export function writeFallback(r: TargetFallback): string {
  return [r.status, r.at, r.provider ?? '', r.reason ?? ''].join(':').replace(/:+$/, '');
}

export function readFallback(raw: string): TargetFallback {
  const [status, at, provider, reason] = raw.split(':');
  return {
    status: status as TargetFallback['status'],
    at: Number(at),
    ...(provider ? { provider: provider as PushProviderName } : {}),
    ...(reason ? { reason: reason as PushFailureReason } : {}),
  };
}

/** The due-time index's members: `<kind>|<notificationId>|<batch or deviceId>[|<trigger>]`. */
export const dueMember = {
  ack: (id: string, batch: number) => `a|${id}|${batch}`,
  redelivered: (id: string, deviceId: string) => `r|${id}|${deviceId}`,
  expiry: (id: string, batch: number) => `x|${id}|${batch}`,
  push: (id: string, batch: number, trigger: 'offline' | 'unacked') => `p|${id}|${batch}|${trigger === 'offline' ? 'o' : 'u'}`,
};

/** Parses "status:updatedAt[:reason]" and applies expiry on read, so no sweep is needed for it. */
export function readTarget(deviceId: string, raw: string, expiresAt: number, now: number, fallback?: string): TargetState {
  const [status, updatedAt, reason] = raw.split(':');
  const extra = fallback ? { fallback: readFallback(fallback) } : {};
  if (status === 'pending' && expiresAt <= now) {
    return { deviceId, status: 'expired' as const, updatedAt: expiresAt, ...extra };
  }
  return {
    deviceId,
    status: status as 'pending' | 'delivered' | 'expired' | 'replaced',
    updatedAt: Number(updatedAt),
    ...(reason ? { reason: reason as 'offline' | 'inbox_full' } : {}),
    ...extra,
  };
}
