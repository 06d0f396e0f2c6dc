import { NotificationPayload } from '../channel/socket-events';

export type TargetStatus = 'pending' | 'delivered' | 'expired' | 'replaced';

/** Why a target expired without delivery, when it is not simply its ttl running out. */
export type ExpiryReason = 'offline' | 'inbox_full';

export interface TargetState {
  deviceId: string;
  status: TargetStatus;
  updatedAt: number;
  reason?: ExpiryReason;
}

export interface NotificationStatus {
  id: string;
  createdAt: number;
  expiresAt?: number;
  targets: TargetState[];
}

export interface PublishAnswer {
  id: string;
  online: number;
  queued: number;
}

export interface PublishRequest {
  payload: NotificationPayload;
  /** The payload as stored and sent (JSON), made once. */
  payloadJson: string;
  deviceIds: readonly string[];
  /** When undelivered targets stop being pending (ttl, or the ack window for ttl 0). */
  effectiveExpiresAt: number;
  /** Keep it for devices offline now (ttl > 0). */
  keepOffline: boolean;
  maxInbox: number;
  /** How long the status stays readable after effectiveExpiresAt. */
  retentionMs: number;
  now: number;
  idempotency?: { key: string; fingerprint: string; windowMs: number };
}

/** A device that was online when the store decided, and the instance holding its socket. */
export interface OnlineTarget {
  deviceId: string;
  instanceId: string;
}

/** A notification ready for the wire, with its size as JSON (what a socket's buffer limit counts). */
export interface Deliverable {
  payload: NotificationPayload;
  bytes: number;
}

export type PublishResult =
  | { kind: 'accepted'; answer: PublishAnswer; online: OnlineTarget[]; evicted: number }
  /**
   * The first answer for this Idempotency-Key, plus what still has to reach devices online now:
   * the notification and its targets still pending (a first attempt may have been stored without
   * being sent, when its outcome was unknown).
   */
  | { kind: 'replay'; answer: PublishAnswer; pending?: { notification: Deliverable; online: OnlineTarget[] } }
  | { kind: 'conflict' };
