import { Controller, Get, Headers, HttpCode, NotFoundException, Param, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '../docs/openapi-decorators';
import { errorResponse } from '../common/error.dto';
import { ApiAuth, OpsTokenReads } from '../auth/api-auth.decorator';
import type { ApiRequest } from '../auth/api-auth.guard';
import { JsonBody } from '../common/json-body.decorator';
import { IDEMPOTENCY_KEY, NOTIFICATION_ID } from '../common/patterns';
import {
  CREATE_NOTIFICATION_EXAMPLES,
  CREATE_NOTIFICATION_SCHEMA,
  CreateNotificationRequest,
  NotificationAcceptedDto,
} from './create-notification.dto';
import { CreateNotificationPipe } from './create-notification.pipe';
import { NOTIFICATION_STATUS_EXAMPLE, NotificationStatusDto } from './notification-status.dto';
import { NotificationsService } from './notifications.service';

@ApiTags('notifications')
@ApiAuth()
@Controller('v1/notifications')
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({ summary: 'Send a notification to devices, all devices of users, or a topic' })
  @ApiBody({ schema: CREATE_NOTIFICATION_SCHEMA, examples: CREATE_NOTIFICATION_EXAMPLES })
  // The one description of the header: @Headers below names it the same way, so Nest's explorer
  // merges the two instead of adding a second, required, lower-case parameter.
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: `A retry with the same key (and body) within IDEMPOTENCY_WINDOW_SECONDS returns the first answer and sends nothing; the same key with another body is 422. Scoped to the API key. ${IDEMPOTENCY_KEY.describe}.`,
    // No example: Swagger UI would fill it in, and every "Try it out" after the first would be a replay.
    schema: { type: 'string', pattern: IDEMPOTENCY_KEY.pattern },
  })
  @ApiResponse({
    status: 202,
    type: NotificationAcceptedDto,
    description: 'Stored for every target; sent to those online',
    example: { id: '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6', online: 1, queued: 0 },
  })
  @ApiResponse(
    errorResponse(400, 'Invalid body or header: which field and why (`fields`)', 'ttl: ttl must not be less than 0', {
      fields: [{ field: 'ttl', reasons: ['ttl must not be less than 0'] }],
    }),
  )
  @ApiResponse(
    errorResponse(413, 'data + title + body over MAX_PAYLOAD_BYTES, or a body over 256 KiB', 'data, title and body take 5120 bytes as JSON; MAX_PAYLOAD_BYTES is 4096'),
  )
  @ApiResponse(errorResponse(415, 'Content-Type is not application/json', 'Content-Type must be application/json'))
  @ApiResponse(errorResponse(422, 'Idempotency-Key reused with a different body', 'Idempotency-Key was already used with a different request body'))
  @ApiResponse(errorResponse(503, 'Redis unavailable; nothing was promised (Retry-After): retry with the same Idempotency-Key', 'presence store unavailable, retry later'))
  create(
    @JsonBody(CreateNotificationPipe) request: CreateNotificationRequest,
    @Req() req: ApiRequest,
    @Headers('Idempotency-Key') idempotencyKey?: string,
  ): Promise<NotificationAcceptedDto> {
    return this.notifications.publish(request, { apiKeyId: req.apiKeyId ?? '', idempotencyKey });
  }

  @Get(':id')
  @OpsTokenReads()
  @ApiOperation({ summary: 'Per-device delivery status of a notification' })
  @ApiResponse({ status: 200, type: NotificationStatusDto, example: NOTIFICATION_STATUS_EXAMPLE })
  @ApiResponse(
    errorResponse(404, 'Unknown id (or not a notification id at all), or older than its retention', 'notification 6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6 is not known'),
  )
  async status(@Param('id') id: string): Promise<NotificationStatusDto> {
    const status = await this.notifications.status(id);
    // A malformed id is not echoed: it can be anything up to the size of the request line.
    if (!status) throw new NotFoundException(NOTIFICATION_ID.test(id) ? `notification ${id} is not known` : 'notification is not known');
    return status;
  }
}
