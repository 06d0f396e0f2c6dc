/** The gateway's socket protocol, as the client sees it (see the gateway README / asyncapi.json). */
export interface ReadyPayload {
  sessionId: string;
  deviceId: string;
  userId: string;
  heartbeat: { interval: number; min: number; max: number; ttl: number; recommended?: number };
  serverTime: number;
  /** When the token runs out (epoch ms, server clock); the SDK refreshes it before with `auth`. */
  tokenExpiresAt: number;
}

export interface Notification<T = unknown> {
  id: string;
  data: T;
  title?: string;
  body?: string;
  topic?: string;
  collapseKey?: string;
  createdAt: number;
  expiresAt?: number;
}

export interface ErrorReply {
  ok: false;
  error: { code: string; message: string; topics?: string[] };
}

export type HeartbeatReply = { ok: true; interval: number; ttl: number; serverTime: number } | ErrorReply;
export type TopicsReply = { ok: true; topics: string[] } | ErrorReply;
export type OkReply = { ok: true } | ErrorReply;

/** A browser `PushSubscription` as its `toJSON()` gives it. */
export interface WebPushSubscriptionJson {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

/**
 * Where else the device can be reached when its socket cannot deliver (`register_push`): a Web Push
 * subscription (a `PushSubscription` or its JSON), or an APNs / FCM token.
 */
export type PushTarget =
  | { provider: 'webpush'; subscription: WebPushSubscriptionJson | { toJSON(): unknown } }
  | { provider: 'apns' | 'fcm'; token: string };

export type AuthReply = { ok: true; tokenExpiresAt: number; topics: string[] } | ErrorReply;

/** Why the server ended a session (`session_ended`). */
export type SessionEndReason = 'token_expired' | 'slow_consumer' | 'rate_limited' | 'kicked' | 'expired';

export interface SessionEnded {
  reason: SessionEndReason;
  /** Whether connecting again is expected (false: an operator ended it). */
  reconnect: boolean;
}
