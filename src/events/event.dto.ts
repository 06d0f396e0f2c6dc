import { ApiProperty } from '../docs/openapi-decorators';
import { EVENT_TYPES } from './event.types';

export class EventEnvelopeDto {
  @ApiProperty({ description: 'Unique per event, the same on every retry: deduplicate by it' }) id!: string;
  @ApiProperty({ enum: EVENT_TYPES }) type!: string;
  @ApiProperty({ description: 'epoch ms of the change (for an offline held by the grace, earlier than its place in the log)' }) timestamp!: number;
  @ApiProperty({
    description:
      'device.online { deviceId, userId, sessionId, instanceId, platform?, network?, seq }; ' +
      'device.offline { deviceId, userId, sessionId, instanceId, reason, lastSeenAt, seq } with reason one of client_close, ' +
      'heartbeat_timeout, instance_lost, replaced, kicked, token_expired, slow_consumer, rate_limited, server_shutdown; ' +
      'user.online / user.offline { userId }. seq grows with every presence change of the device: keep the highest seen ' +
      '(a flap suppressed by PRESENCE_EVENT_GRACE_MS leaves a gap). ' +
      'notification.delivered / notification.unacked { notificationId, deviceId, userId }; ' +
      'notification.expired { notificationId, deviceId, userId, reason } with reason inbox_full or offline. ' +
      'userId is null for a device never seen (or forgotten).',
    type: 'object',
    additionalProperties: true,
  })
  data!: Record<string, unknown>;
}

export class EventsPageDto {
  @ApiProperty({ type: [EventEnvelopeDto], description: 'oldest first, in log order' }) events!: EventEnvelopeDto[];
  @ApiProperty({ description: 'Opaque cursor, always present: pass it back as `after` for newer events (an empty page when caught up)' })
  next!: string;
}
