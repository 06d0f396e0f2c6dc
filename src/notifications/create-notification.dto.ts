import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsDefined, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { ID, TOPIC } from '../common/patterns';

const ID_MESSAGE = `$property must hold ids, each ${ID.describe}`;
/** FCM's longest time to live; longer would outlive every mobile push service's own queue. */
export const MAX_TTL_SECONDS = 2_419_200;
export const MAX_TARGETS = 1_000;

export class CreateNotificationDto {
  @ApiPropertyOptional({ type: [String], maxItems: MAX_TARGETS, example: ['phone-1'] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_TARGETS)
  @Matches(ID.regex, { each: true, message: ID_MESSAGE })
  deviceIds?: string[];

  @ApiPropertyOptional({ type: [String], maxItems: MAX_TARGETS, example: ['user-42'] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_TARGETS)
  @Matches(ID.regex, { each: true, message: ID_MESSAGE })
  userIds?: string[];

  @ApiPropertyOptional({ description: 'Topic name (delivery to topic subscribers)', example: 'news.sport' })
  @IsOptional()
  @IsString()
  @Matches(TOPIC.regex, { message: `topic must be ${TOPIC.describe}` })
  topic?: string;

  @ApiProperty({ description: 'Any JSON value, delivered as is', example: { orderId: 17 } })
  @IsDefined()
  data!: unknown;

  @ApiPropertyOptional({ maxLength: 256 })
  @IsOptional()
  @IsString()
  @Length(1, 256)
  title?: string;

  @ApiPropertyOptional({ maxLength: 4096 })
  @IsOptional()
  @IsString()
  @Length(1, 4096)
  body?: string;

  @ApiPropertyOptional({ description: 'Seconds to keep it for offline devices; 0 = online devices only', default: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_TTL_SECONDS)
  ttl?: number;

  @ApiPropertyOptional({ maxLength: 64, description: 'A newer notification with the same key replaces a pending one' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  collapseKey?: string;
}

export class NotificationAcceptedDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'Devices it was sent to now' }) online!: number;
  @ApiProperty({ description: 'Devices it waits for (offline, ttl > 0)' }) queued!: number;
}
