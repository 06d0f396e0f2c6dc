import { ApiProperty, ApiPropertyOptional } from '../docs/openapi-decorators';

export class TargetFallbackDto {
  @ApiPropertyOptional({ enum: ['webpush', 'apns', 'fcm'], description: 'the provider tried (absent for no_target)' }) provider?: string;
  @ApiProperty({ enum: ['sent', 'failed', 'no_target'], description: 'no_target: the device has no push registration' }) status!: string;
  @ApiPropertyOptional({
    enum: ['gone', 'rejected', 'unavailable', 'not_configured'],
    description: 'why it failed: gone (the provider says the token no longer exists; the registration was deleted), rejected, unavailable (after retries), not_configured',
  })
  reason?: string;
  @ApiProperty({ description: 'epoch ms of the outcome' }) at!: number;
}

export class TargetStatusDto {
  @ApiProperty({ example: 'phone-1' }) deviceId!: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'expired', 'replaced'], example: 'delivered' }) status!: string;
  @ApiProperty({ description: 'epoch ms of the last status change' }) updatedAt!: number;
  @ApiPropertyOptional({ enum: ['offline', 'inbox_full'], description: 'Why it expired undelivered, when not its ttl' })
  reason?: string;
  @ApiPropertyOptional({ type: TargetFallbackDto, description: 'The native push of the fallback policy, once it was decided for this target' })
  fallback?: TargetFallbackDto;
}

export class NotificationStatusDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'epoch ms' }) createdAt!: number;
  @ApiPropertyOptional({ description: 'epoch ms; only with ttl > 0' }) expiresAt?: number;
  @ApiProperty({ type: [TargetStatusDto] }) targets!: TargetStatusDto[];
}

export const NOTIFICATION_STATUS_EXAMPLE: NotificationStatusDto = {
  id: '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6',
  createdAt: 1795306693338,
  expiresAt: 1795310293338,
  targets: [
    { deviceId: 'phone-1', status: 'delivered', updatedAt: 1795306693412 },
    { deviceId: 'tablet-2', status: 'expired', updatedAt: 1795306693338, reason: 'offline', fallback: { provider: 'fcm', status: 'sent', at: 1795306693401 } },
  ],
};
