import type { ValidateFunction } from 'ajv';
import { compileBodySchema, schemaFieldErrors } from '../common/json-schema';
import { NETWORK_KEY, NamePattern, MAX_TOPICS_PER_SESSION, TOPIC } from '../common/patterns';
import type { AppState } from '../presence/presence.types';
import { REGISTER_PUSH_SCHEMA, RegisterPushRequest } from '../push/push-target';

/**
 * What devices may send, as JSON Schema: the same objects validate live payloads here and are
 * published in /asyncapi.json, so the documentation cannot drift from what the gateway accepts.
 */
export interface HeartbeatRequest {
  /** The device's next interval, ms (clamped to [min, max]). */
  interval?: number;
  network?: string;
  appState?: AppState;
  /** The round trip the device measures for heartbeat acks, ms: widens the TTL's slack on slow links. */
  rtt?: number;
}

export interface TopicsRequest {
  topics: string[];
}

export interface AuthRequest {
  token: string;
}

/** The largest round trip a device may report (`rtt` in a heartbeat or in its handshake's auth), ms. */
export const MAX_REPORTED_RTT_MS = 600_000;

const named = (p: NamePattern) => ({ type: 'string', pattern: p.pattern });

const topicsRequest = {
  type: 'object',
  required: ['topics'],
  properties: { topics: { type: 'array', minItems: 1, maxItems: MAX_TOPICS_PER_SESSION, items: named(TOPIC) } },
} as const;

export const CLIENT_EVENT_SCHEMAS = {
  heartbeat: {
    type: ['object', 'null'],
    properties: {
      interval: { type: 'number', exclusiveMinimum: 0, description: 'ms until the next beat' },
      network: named(NETWORK_KEY),
      appState: { enum: ['foreground', 'background'] },
      rtt: { type: 'number', minimum: 0, maximum: MAX_REPORTED_RTT_MS, description: 'the smoothed round trip of heartbeat acks the device measures, ms (optional): presence keeps room for TCP retransmissions on a slow link' },
    },
  },
  subscribe: topicsRequest,
  unsubscribe: topicsRequest,
  auth: {
    type: 'object',
    required: ['token'],
    properties: { token: { type: 'string', minLength: 1, description: 'a fresh device JWT with the same sub and deviceId' } },
  },
  register_push: REGISTER_PUSH_SCHEMA,
  unregister_push: { type: ['object', 'null'], description: 'no fields' },
} as const;

/** Client events the gateway knows; anything else is answered `unknown_event`. */
export type ClientEventName = keyof typeof CLIENT_EVENT_SCHEMAS;
export const CLIENT_EVENTS = Object.keys(CLIENT_EVENT_SCHEMAS) as ClientEventName[];

interface ClientPayloads {
  heartbeat: HeartbeatRequest;
  subscribe: TopicsRequest;
  unsubscribe: TopicsRequest;
  auth: AuthRequest;
  register_push: RegisterPushRequest;
  unregister_push: Record<string, never>;
}

const validators = Object.fromEntries(
  CLIENT_EVENTS.map((event) => [event, compileBodySchema(CLIENT_EVENT_SCHEMAS[event])]),
) as Record<ClientEventName, ValidateFunction>;

/** The payload as its type, or a sentence saying what is wrong with it. */
export function readClientPayload<E extends ClientEventName>(event: E, payload: unknown): ClientPayloads[E] | string {
  const value = payload === undefined && (event === 'heartbeat' || event === 'unregister_push') ? null : payload;
  const validate = validators[event];
  if (validate(value)) return (value ?? {}) as ClientPayloads[E];
  // The error ack carries one sentence: the first field's first reason (REST lists them all).
  return schemaFieldErrors(validate.errors ?? [], 'the payload')[0]?.reasons[0] ?? 'invalid payload';
}
