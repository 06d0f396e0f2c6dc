import { EVENT_TYPES, EventType, OFFLINE_REASONS } from './event.types';

/**
 * JSON Schemas of each event's `data` (PRODUCT.md "Events for backends"), the source of the
 * AsyncAPI description of webhook bodies; the e2e tests validate live events against them.
 */
const str = { type: 'string' };
const ms = { type: 'integer', description: 'epoch milliseconds' };
const seq = { type: 'integer', minimum: 1, description: 'grows with every presence change of the device: keep the highest seen, drop lower ones' };
const nullableUser = { type: ['string', 'null'], description: 'null for a device never seen (or forgotten)' };
const object = (required: string[], properties: Record<string, object>) => ({ type: 'object', required, additionalProperties: false, properties });
const notification = { notificationId: str, deviceId: str, userId: nullableUser };

export const EVENT_DATA_SCHEMAS: Record<EventType, object> = {
  'device.online': object(['deviceId', 'userId', 'sessionId', 'instanceId', 'seq'], {
    deviceId: str,
    userId: str,
    sessionId: str,
    instanceId: str,
    platform: str,
    network: str,
    seq,
  }),
  'device.offline': object(['deviceId', 'userId', 'sessionId', 'instanceId', 'reason', 'lastSeenAt', 'seq'], {
    deviceId: str,
    userId: str,
    sessionId: str,
    instanceId: { type: 'string', description: 'the instance that held the session' },
    reason: { enum: [...OFFLINE_REASONS] },
    lastSeenAt: ms,
    seq,
  }),
  'user.online': object(['userId'], { userId: str }),
  'user.offline': object(['userId'], { userId: str }),
  'notification.delivered': object(['notificationId', 'deviceId', 'userId'], notification),
  'notification.unacked': object(['notificationId', 'deviceId', 'userId'], notification),
  'notification.expired': object(['notificationId', 'deviceId', 'userId', 'reason'], { ...notification, reason: { enum: ['ttl', 'inbox_full', 'offline'] } }),
};

/** The envelope of one event type: the webhook body and a `GET /v1/events` item. */
export function envelopeSchema(type: EventType): object {
  return {
    type: 'object',
    required: ['id', 'type', 'timestamp', 'data'],
    additionalProperties: false,
    properties: {
      id: { type: 'string', pattern: '^\\d+(-\\d+)?-\\d+$', description: 'unique per event, the same on every retry (webhook-id): deduplicate by it; opaque (<ms>-<n>, on a Redis Cluster <ms>-<p>-<n>)' },
      type: { const: type },
      timestamp: ms,
      data: EVENT_DATA_SCHEMAS[type],
    },
  };
}

export const EVENT_ENVELOPE_SCHEMAS = Object.fromEntries(EVENT_TYPES.map((t) => [t, envelopeSchema(t)])) as Record<EventType, object>;
