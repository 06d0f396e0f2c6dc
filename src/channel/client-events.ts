import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { NETWORK_KEY, NamePattern, MAX_TOPICS_PER_SESSION, TOPIC } from '../common/patterns';
import type { AppState } from '../presence/presence.types';

/**
 * What devices may send, as JSON Schema: the same objects validate live payloads here and are
 * published in /asyncapi.json, so the documentation cannot drift from what the gateway accepts.
 */
export interface HeartbeatRequest {
  /** The device's next interval, ms (clamped to [min, max]). */
  interval?: number;
  network?: string;
  appState?: AppState;
}

export interface TopicsRequest {
  topics: string[];
}

export interface AuthRequest {
  token: string;
}

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
    },
  },
  subscribe: topicsRequest,
  unsubscribe: topicsRequest,
  auth: {
    type: 'object',
    required: ['token'],
    properties: { token: { type: 'string', minLength: 1, description: 'a fresh device JWT with the same sub and deviceId' } },
  },
} as const;

/** Client events the gateway knows; anything else is answered `unknown_event`. */
export type ClientEventName = keyof typeof CLIENT_EVENT_SCHEMAS;
export const CLIENT_EVENTS = Object.keys(CLIENT_EVENT_SCHEMAS) as ClientEventName[];

interface ClientPayloads {
  heartbeat: HeartbeatRequest;
  subscribe: TopicsRequest;
  unsubscribe: TopicsRequest;
  auth: AuthRequest;
}

const ajv = new Ajv({ allErrors: false, strict: true, strictTypes: false });
const validators = Object.fromEntries(
  CLIENT_EVENTS.map((event) => [event, ajv.compile(CLIENT_EVENT_SCHEMAS[event])]),
) as Record<ClientEventName, ValidateFunction>;
const describedPatterns = new Map([NETWORK_KEY, TOPIC].map((p) => [p.pattern, p.describe]));

/** The payload as its type, or a sentence saying what is wrong with it. */
export function readClientPayload<E extends ClientEventName>(event: E, payload: unknown): ClientPayloads[E] | string {
  const value = payload === undefined && event === 'heartbeat' ? null : payload;
  const validate = validators[event];
  if (validate(value)) return (value ?? {}) as ClientPayloads[E];
  return explain(validate.errors?.[0]);
}

function explain(error: ErrorObject | undefined): string {
  if (!error) return 'invalid payload';
  const field = error.instancePath ? error.instancePath.slice(1).replace(/\//g, '.') : 'payload';
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'pattern':
      return `${field} must be ${describedPatterns.get(String(params.pattern)) ?? `like ${String(params.pattern)}`}`;
    case 'required':
      return `${String(params.missingProperty)} is required`;
    case 'type':
      return `${field} must be ${[params.type].flat().join(' or ')}`;
    case 'enum':
      return `${field} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'minLength':
      return `${field} must not be empty`;
    case 'minItems':
      return `${field} must hold at least ${String(params.limit)} item(s)`;
    case 'maxItems':
      return `${field} must hold at most ${String(params.limit)} items`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}
