import { NotificationPayload } from '../channel/socket-events';
import { Deliverable, NotificationStatus, PublishRequest, PublishResult } from './notification.types';

/**
 * Per-device inboxes and per-target receipts, in Redis or in process memory; both keep the same
 * rules, checked by one shared test suite:
 * - `publish` is atomic: idempotency record, statuses and inbox entries are all written or none;
 *   who is online is decided from presence inside that same step;
 * - an inbox holds a device's pending notifications oldest first, at most `maxInbox` (the oldest
 *   is evicted, status `expired`, reason `inbox_full`); a newer one with the same collapse key
 *   replaces a pending one (status `replaced`);
 * - a notification is pending until acked (`delivered`) or past its effective expiry (`expired`,
 *   never handed out again);
 * - each of these changes that happened, and nothing else, is recorded as a `notification.*`
 *   event in the event log in the same atomic step (`delivered` on ack, `expired` for `offline`
 *   and `inbox_full` at publish, `unacked` once per target).
 */
export abstract class NotificationStore {
  abstract publish(request: PublishRequest): Promise<PublishResult>;

  /** The device's pending, unexpired notifications, oldest first. */
  abstract pending(deviceId: string, now: number, limit: number): Promise<Deliverable[]>;

  /** Records a device's ack; true if it changed the target's status. */
  abstract ack(payload: Pick<NotificationPayload, 'id' | 'collapseKey'>, deviceId: string, now: number): Promise<boolean>;

  /**
   * The device was sent `id` and did not ack it within ACK_TIMEOUT_MS: records
   * `notification.unacked`, once per target and only while it is not delivered, replaced or
   * evicted; true if it did.
   */
  abstract unacked(id: string, deviceId: string, now: number): Promise<boolean>;

  abstract status(id: string, now: number): Promise<NotificationStatus | null>;
}

/** Parses "status:updatedAt[:reason]" and applies expiry on read, so no sweep is needed for it. */
export function readTarget(deviceId: string, raw: string, expiresAt: number, now: number) {
  const [status, updatedAt, reason] = raw.split(':');
  if (status === 'pending' && expiresAt <= now) {
    return { deviceId, status: 'expired' as const, updatedAt: expiresAt };
  }
  return {
    deviceId,
    status: status as 'pending' | 'delivered' | 'expired' | 'replaced',
    updatedAt: Number(updatedAt),
    ...(reason ? { reason: reason as 'offline' | 'inbox_full' } : {}),
  };
}
