import { Body, Controller, Get, Headers, HttpCode, NotFoundException, Param, Post, Req } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiAuth } from '../auth/api-auth.decorator';
import type { ApiRequest } from '../auth/api-auth.guard';
import { CreateNotificationDto, NotificationAcceptedDto } from './create-notification.dto';
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
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'A retry with the same key returns the first answer' })
  @ApiResponse({ status: 202, type: NotificationAcceptedDto, description: 'Stored for every target; sent to those online' })
  @ApiResponse({ status: 400, description: 'Invalid body: which field and why' })
  @ApiResponse({ status: 413, description: 'data + title + body over MAX_PAYLOAD_BYTES' })
  @ApiResponse({ status: 422, description: 'Idempotency-Key reused with a different body' })
  @ApiResponse({ status: 503, description: 'Redis unavailable; nothing was promised (Retry-After)' })
  create(
    @Body() dto: CreateNotificationDto,
    @Req() req: ApiRequest,
    @Headers('idempotency-key') idempotencyKey?: string,
  ): Promise<NotificationAcceptedDto> {
    return this.notifications.publish(dto, { apiKeyId: req.apiKeyId ?? '', idempotencyKey });
  }

  @Get(':id')
  @ApiOperation({ summary: 'Per-device delivery status of a notification' })
  @ApiResponse({ status: 200, type: NotificationStatusDto })
  @ApiResponse({ status: 404, description: 'Unknown id, or older than its retention' })
  async status(@Param('id') id: string): Promise<NotificationStatusDto> {
    const status = await this.notifications.status(id);
    if (!status) throw new NotFoundException(`notification ${id} is not known`);
    return status;
  }
}
