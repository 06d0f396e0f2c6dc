import { Controller, Get, Headers, HttpCode, NotFoundException, Param, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiAuth } from '../auth/api-auth.decorator';
import type { ApiRequest } from '../auth/api-auth.guard';
import { JsonBody } from '../common/json-body.decorator';
import { NOTIFICATION_ID } from '../common/patterns';
import { CREATE_NOTIFICATION_SCHEMA, CreateNotificationRequest, NotificationAcceptedDto } from './create-notification.dto';
import { CreateNotificationPipe } from './create-notification.pipe';
import { NotificationStatusDto } from './notification-status.dto';
import { NotificationsService } from './notifications.service';

@ApiTags('notifications')
@ApiAuth()
@Controller('v1/notifications')
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({ summary: 'Send a notification to devices, all devices of users, or a topic' })
  @ApiBody({ schema: CREATE_NOTIFICATION_SCHEMA })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'A retry with the same key returns the first answer' })
  @ApiResponse({ status: 202, type: NotificationAcceptedDto, description: 'Stored for every target; sent to those online' })
  @ApiResponse({ status: 400, description: 'Invalid body: which field and why (`fields`)' })
  @ApiResponse({ status: 413, description: 'data + title + body over MAX_PAYLOAD_BYTES, or a body over 256 KiB' })
  @ApiResponse({ status: 415, description: 'Content-Type is not application/json' })
  @ApiResponse({ status: 422, description: 'Idempotency-Key reused with a different body' })
  @ApiResponse({ status: 503, description: 'Redis unavailable; nothing was promised (Retry-After)' })
  create(
    @JsonBody(CreateNotificationPipe) request: CreateNotificationRequest,
    @Req() req: ApiRequest,
    @Headers('idempotency-key') idempotencyKey?: string,
  ): Promise<NotificationAcceptedDto> {
    return this.notifications.publish(request, { apiKeyId: req.apiKeyId ?? '', idempotencyKey });
  }

  @Get(':id')
  @ApiOperation({ summary: 'Per-device delivery status of a notification' })
  @ApiResponse({ status: 200, type: NotificationStatusDto })
  @ApiResponse({ status: 404, description: 'Unknown id (or not a notification id at all), or older than its retention' })
  async status(@Param('id') id: string): Promise<NotificationStatusDto> {
    const status = await this.notifications.status(id);
    // A malformed id is not echoed: it can be anything up to the size of the request line.
    if (!status) throw new NotFoundException(NOTIFICATION_ID.test(id) ? `notification ${id} is not known` : 'notification is not known');
    return status;
  }
}
