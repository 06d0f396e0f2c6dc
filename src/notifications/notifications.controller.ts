import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiAuth } from '../auth/api-auth.decorator';
import { CreateNotificationDto, NotificationAcceptedDto } from './create-notification.dto';
import { NotificationsService } from './notifications.service';

@ApiTags('notifications')
@ApiAuth()
@Controller('v1/notifications')
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({ summary: 'Send a notification to devices and/or all devices of users' })
  @ApiResponse({ status: 202, type: NotificationAcceptedDto })
  @ApiResponse({ status: 400, description: 'Invalid body: which field and why' })
  @ApiResponse({ status: 413, description: 'data + title + body over MAX_PAYLOAD_BYTES' })
  @ApiResponse({ status: 503, description: 'Presence store unavailable (Retry-After)' })
  create(@Body() dto: CreateNotificationDto): Promise<NotificationAcceptedDto> {
    return this.notifications.publish(dto);
  }
}
