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

export type PublishResult =
  | { kind: 'accepted'; answer: PublishAnswer; onlineDeviceIds: string[]; evicted: number }
  | { kind: 'replay'; answer: PublishAnswer }
  | { kind: 'conflict' };
