import type { ExamplesObject, SchemaObject } from '@nestjs/swagger';
import { ApiProperty } from '../docs/openapi-decorators';
import { ID, TOPIC } from '../common/patterns';
import { FALLBACK_POLICIES, FallbackPolicy } from './notification.types';

/** FCM's longest time to live; longer would outlive every mobile push service's own queue. */
export const MAX_TTL_SECONDS = 2_419_200;
export const MAX_TARGETS = 1_000;
/** How deep `data` may nest; objects and arrays both count, `{"a":1}` is one level. */
export const MAX_DATA_DEPTH = 32;

/** The body of `POST /v1/notifications`, as parsed from JSON and never rebuilt. */
export interface CreateNotificationRequest {
  deviceIds?: string[];
  userIds?: string[];
  topic?: string;
  /** Any JSON object, delivered exactly as posted. */
  data: Record<string, unknown>;
  title?: string;
  body?: string;
  ttl?: number;
  collapseKey?: string;
  fallback?: FallbackPolicy;
}

const ids = (example: string): SchemaObject => ({
  type: 'array',
  minItems: 1,
  maxItems: MAX_TARGETS,
  items: { type: 'string', pattern: ID.pattern },
  description: `1-${MAX_TARGETS} ids, each ${ID.describe}`,
  example: [example],
});

/**
 * The one definition of the body: the gateway validates with it (ajv) and publishes it in
 * OpenAPI. `data` is only checked to be an object here; its depth and numbers are checked without
 * recursion afterwards (CreateNotificationPipe), because a schema walk would recurse.
 */
export const CREATE_NOTIFICATION_SCHEMA: SchemaObject = {
  type: 'object',
  description: 'At least one target: deviceIds, userIds or topic (merged and deduplicated).',
  required: ['data'],
  anyOf: [{ required: ['deviceIds'] }, { required: ['userIds'] }, { required: ['topic'] }],
  additionalProperties: false,
  properties: {
    deviceIds: ids('phone-1'),
    userIds: ids('user-42'),
    topic: { type: 'string', pattern: TOPIC.pattern, description: `Topic name (delivery to its subscribers): ${TOPIC.describe}`, example: 'news.sport' },
    data: {
      type: 'object',
      description: `Any JSON object, nested at most ${MAX_DATA_DEPTH} levels (objects and arrays count), delivered exactly as posted (every key kept)`,
      example: { orderId: 17 },
    },
    title: { type: 'string', minLength: 1, maxLength: 256, example: 'Order shipped' },
    body: { type: 'string', minLength: 1, maxLength: 4096, example: 'Arrives Tuesday' },
    ttl: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_TTL_SECONDS,
      default: 0,
      description: 'Seconds to keep it for offline devices; 0 = online devices only',
      example: 3600,
    },
    collapseKey: { type: 'string', minLength: 1, maxLength: 64, description: 'A newer notification with the same key replaces a pending one', example: 'order-17' },
    fallback: {
      type: 'string',
      enum: [...FALLBACK_POLICIES],
      default: 'none',
      description:
        'Native push (Web Push, APNs, FCM) for targets the socket cannot reach: "offline" pushes the targets offline at publish at once; ' +
        '"unacked" also pushes targets that were sent it and did not ack within ACK_TIMEOUT_MS. Outcomes in each target\'s fallback.',
      example: 'unacked',
    },
  },
};

/**
 * Request examples for OpenAPI, the first one being what Swagger UI's "Try it out" starts from:
 * valid as they stand (test/openapi.e2e-spec.ts posts each one), so any of them answers 202.
 */
export const CREATE_NOTIFICATION_EXAMPLES: ExamplesObject = {
  device: {
    summary: 'To one device, kept an hour for it if offline',
    value: { deviceIds: ['phone-1'], title: 'Order shipped', body: 'Arrives Tuesday', data: { orderId: 17 }, ttl: 3600, collapseKey: 'order-17' },
  },
  fallback: {
    summary: 'To every device of a user, natively pushed where the socket cannot deliver it',
    value: { userIds: ['user-42'], title: 'New message', body: 'Anna: are you coming?', data: { chatId: 9 }, ttl: 600, fallback: 'unacked' },
  },
  user: {
    summary: "To every device of a user, online ones only",
    value: { userIds: ['user-42'], data: { kind: 'sync', since: 1795306693338 } },
  },
  topic: {
    summary: 'To the sockets subscribed to a topic now',
    value: { topic: 'sport.tennis', title: 'Match point', data: { matchId: 'wimbledon-final' } },
  },
};

export class NotificationAcceptedDto {
  @ApiProperty({ format: 'uuid', example: '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6' }) id!: string;
  @ApiProperty({ description: 'Devices it was sent to now', example: 1 }) online!: number;
  @ApiProperty({ description: 'Devices it waits for (offline, ttl > 0)', example: 0 }) queued!: number;
}
