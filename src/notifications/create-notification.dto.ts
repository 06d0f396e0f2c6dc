import { ApiProperty, type SchemaObject } from '@nestjs/swagger';
import { ID, TOPIC } from '../common/patterns';

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
    title: { type: 'string', minLength: 1, maxLength: 256 },
    body: { type: 'string', minLength: 1, maxLength: 4096 },
    ttl: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_TTL_SECONDS,
      default: 0,
      description: 'Seconds to keep it for offline devices; 0 = online devices only',
    },
    collapseKey: { type: 'string', minLength: 1, maxLength: 64, description: 'A newer notification with the same key replaces a pending one' },
  },
};

export class NotificationAcceptedDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'Devices it was sent to now' }) online!: number;
  @ApiProperty({ description: 'Devices it waits for (offline, ttl > 0)' }) queued!: number;
}
