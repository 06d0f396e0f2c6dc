/**
 * The shapes of names that cross the gateway's edges, defined once. Ids and topics become Redis
 * keys and Socket.IO room names, so they are kept to a safe alphabet and length. REST validation,
 * socket payload validation, the token verifier and the AsyncAPI document all read them from here.
 */
export interface NamePattern {
  readonly regex: RegExp;
  /** The JSON Schema `pattern` (the regex source). */
  readonly pattern: string;
  /** Completes "<field> must be ...". */
  readonly describe: string;
  test(value: unknown): value is string;
}

function namePattern(regex: RegExp, describe: string): NamePattern {
  return {
    regex,
    pattern: regex.source,
    describe,
    test: (value: unknown): value is string => typeof value === 'string' && regex.test(value),
  };
}

/** Device ids, user ids (the token's `sub`). */
export const ID = namePattern(/^[A-Za-z0-9._:@-]{1,128}$/, 'an id of 1-128 characters [A-Za-z0-9._:@-]');

/** A topic name a device subscribes to or a backend publishes to. */
export const TOPIC = namePattern(/^[A-Za-z0-9._:-]{1,128}$/, 'a topic of 1-128 characters [A-Za-z0-9._:-]');

/** What a token's `topics` claim may hold: a topic name, or `prefix.*` for every topic under it. */
export const TOPIC_GRANT = namePattern(/^[A-Za-z0-9._:-]{1,128}(\.\*)?$/, 'a topic name or a prefix.* pattern');

/** A smart-heartbeat network key such as `wifi:<ssid>` or `cell:<carrier>`. */
export const NETWORK_KEY = namePattern(/^[A-Za-z0-9._:@/+-]{1,64}$/, '1-64 characters of [A-Za-z0-9._:@/+-]');

/** Notification ids are UUIDs minted by the gateway. */
export const NOTIFICATION_ID = namePattern(
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  'a notification id (a UUID the gateway returned)',
);

/** Idempotency-Key header values: printable ASCII. */
export const IDEMPOTENCY_KEY = namePattern(/^[\x21-\x7e]{1,255}$/, '1-255 printable ASCII characters');

export const MAX_TOPICS_PER_SESSION = 100;
