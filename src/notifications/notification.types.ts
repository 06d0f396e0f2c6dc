import type { FoldedAdmit } from '../auth/rate-limiter';
import { NotificationPayload } from '../channel/socket-events';
import type { PushFailureReason, PushProviderName } from '../push/push.types';

export type TargetStatus = 'pending' | 'delivered' | 'expired' | 'replaced';

/** Why a target expired without delivery, when it is not simply its ttl running out. */
export type ExpiryReason = 'offline' | 'inbox_full';

/** `POST /v1/notifications` `fallback`: which targets get a native push (PRODUCT.md "Native push"). */
export const FALLBACK_POLICIES = ['none', 'offline', 'unacked'] as const;
export type FallbackPolicy = (typeof FALLBACK_POLICIES)[number];

/** What triggered a native push: the target was offline at publish, or did not ack in time. */
export type FallbackTrigger = 'offline' | 'unacked';

/** A target's native push, once it was decided (at most one per target). */
export interface TargetFallback {
  provider?: PushProviderName;
  status: 'sent' | 'failed' | 'no_target';
  reason?: PushFailureReason;
  at: number;
}

export interface TargetState {
  deviceId: string;
  status: TargetStatus;
  updatedAt: number;
  reason?: ExpiryReason;
  fallback?: TargetFallback;
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
  /** When targets online now are reported unacked (and pushed natively for `unacked`) without an ack: now + ACK_TIMEOUT_MS. */
  ackDeadlineAt: number;
  fallback: FallbackPolicy;
  /** How long the publishing instance holds the native pushes it claims at once before another instance may take them over. */
  leaseMs: number;
  /**
   * Called with targets online now as soon as their part of the publish is durable, before the
   * publish settles, so a large fan-out is sent while its later parts are still being written. A
   * target passed here is not in the result's `online`; a store that writes in one step passes
   * nothing and returns them all there.
   */
  onDurable?: (online: OnlineTarget[]) => void;
  /**
   * The API key's rate-limit admission, run first in the same step as the write (only where
   * NotificationStore.foldsAdmission said so); refused, the publish rejects with AdmissionRefused
   * and writes nothing. `now` is the admission's.
   */
  admit?: FoldedAdmit;
  /**
   * Users whose devices are targets too, looked up in the same step as the write (only where
   * NotificationStore.foldsUsers said so): their devices seen since `forgetBefore` (as
   * PresenceStore.userDeviceIds lists them), deduplicated with `deviceIds`. More than `maxTargets`
   * in all: nothing is written and the result is `unfolded` (the caller looks them up and publishes
   * again, without `admit`: an admission in the step has counted).
   */
  users?: { ids: readonly string[]; forgetBefore: number; maxTargets: number };
}

/**
 * Native pushes to send for one batch of targets of one notification, claimed by one instance
 * until `leaseMs` from its claim (renewable); the key names it in the store's due-time index.
 */
export interface FallbackJob {
  /** Redis: `<partition>/<due member>` (the index is per partition); embedded: the member. */
  key: string;
  notification: Deliverable;
  trigger: FallbackTrigger;
  /** The targets still without a fallback outcome, each with its registration (JSON) if it has one. */
  targets: { deviceId: string; registration?: string }[];
}

/** One target's native push as it ended; `registration`: the one used (deleted if the provider said `gone`). */
export interface FallbackResult extends TargetFallback {
  deviceId: string;
  registration?: string;
}

/** What one claim of due deadlines did: events recorded, and native pushes now this instance's to send. */
export interface DueClaim {
  /** Due entries taken from the index (deadlines and leased pushes). */
  claimed: number;
  /** More may be due now: the call stopped at its limit of work. */
  more: boolean;
  unacked: number;
  expired: number;
  jobs: FallbackJob[];
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
  /**
   * Stored; `online` are to be sent it now. `notification`: what was stored when it differs from the
   * request's payload (a publish resumed under its Idempotency-Key keeps the first attempt's id and createdAt).
   */
  | { kind: 'accepted'; answer: PublishAnswer; online: OnlineTarget[]; evicted: number; fallback: FallbackJob[]; notification?: Deliverable }
  /**
   * The first answer for this Idempotency-Key, plus what still has to reach devices online now:
   * the notification and its targets still pending (a first attempt may have been stored without
   * being sent, when its outcome was unknown).
   */
  | { kind: 'replay'; answer: PublishAnswer; pending?: { notification: Deliverable; online: OnlineTarget[] } }
  | { kind: 'conflict' }
  /** PublishRequest.users named more devices than its maxTargets: nothing written (any admission in the step counted). */
  | { kind: 'unfolded' };
