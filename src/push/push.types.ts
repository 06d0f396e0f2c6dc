import { NotificationPayload } from '../channel/socket-events';

/**
 * Native push when the socket cannot deliver (PRODUCT.md "Native push when the socket cannot
 * deliver"). This file is the seam between the two halves:
 * - the fallback policy (registrations, `fallback` on publish, durable ack deadlines) decides
 *   *when* a device gets a native push and records the outcome per target;
 * - the providers (Web Push, APNs, FCM) decide *how*: wire format, credentials, retries.
 */

export const PUSH_PROVIDERS = ['webpush', 'apns', 'fcm'] as const;
export type PushProviderName = (typeof PUSH_PROVIDERS)[number];

/** A browser `PushSubscription` as its `toJSON()` gives it. */
export interface WebPushSubscription {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

/** Where else a device can be reached; at most one per device. */
export type PushRegistration =
  | { provider: 'webpush'; subscription: WebPushSubscription }
  | { provider: 'apns'; token: string }
  | { provider: 'fcm'; token: string };

/** What a native push carries: the notification exactly as the socket's `notification` event does. */
export interface PushMessage {
  notification: NotificationPayload;
  /** Seconds the provider may keep trying to reach the device (the notification's remaining ttl; 0 = now or never). */
  ttlSeconds: number;
}

/** Why a push failed, as the target's `fallback.reason` says. */
export type PushFailureReason =
  /** the provider says the token or subscription no longer exists (404/410, UNREGISTERED): the registration is deleted */
  | 'gone'
  /** the provider rejected the request itself (a 4xx other than 404/410/429): retrying cannot help */
  | 'rejected'
  /** the provider kept failing (5xx, 429, timeouts, connection errors) until the retries ran out */
  | 'unavailable'
  /** the provider is not configured on this gateway */
  | 'not_configured';

export type PushOutcome =
  | { status: 'sent'; provider: PushProviderName }
  | { status: 'failed'; provider: PushProviderName; reason: PushFailureReason; detail?: string };

/**
 * Sends one native push, with the provider's own retries (backoff honouring `Retry-After`) and
 * bounded concurrency inside; resolves with the final outcome and never rejects.
 */
export abstract class PushSender {
  /** Whether the provider has its settings on this gateway. */
  abstract enabled(provider: PushProviderName): boolean;

  abstract send(registration: PushRegistration, message: PushMessage): Promise<PushOutcome>;
}
