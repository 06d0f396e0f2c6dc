import { PushMessage, PushProviderName, PushRegistration } from '../push.types';

/** What one request to a provider came to; the delivery loop turns it into a `PushOutcome`. */
export type AttemptResult =
  | { kind: 'sent' }
  /** the token or subscription no longer exists (404/410, Unregistered, UNREGISTERED) */
  | { kind: 'gone'; detail: string }
  /** the provider refused the request itself: sending it again cannot help */
  | { kind: 'rejected'; detail: string }
  /** worth another try: 429, 5xx, a timeout or a connection error; `retryAfterMs` from `Retry-After` */
  | { kind: 'retry'; detail: string; retryAfterMs?: number };

/**
 * One native push service: builds its wire format and makes exactly one request per `attempt`.
 * Retries, the concurrency bound and metrics live in `ProviderDelivery`, the same for every provider.
 */
export interface PushProvider<R extends PushRegistration = PushRegistration> {
  readonly name: PushProviderName;
  /** `ttlSeconds` is what is left of the message's ttl at this attempt. */
  attempt(registration: R, message: PushMessage): Promise<AttemptResult>;
  /** Closes long-lived connections (HTTP/2 sessions, keep-alive sockets). */
  close(): Promise<void>;
}
