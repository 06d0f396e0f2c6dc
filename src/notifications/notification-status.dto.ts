import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class TargetStatusDto {
  @ApiProperty({ example: 'phone-1' }) deviceId!: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'expired', 'replaced'], example: 'delivered' }) status!: string;
  @ApiProperty({ description: 'epoch ms of the last status change' }) updatedAt!: number;
  @ApiPropertyOptional({ enum: ['offline', 'inbox_full'], description: 'Why it expired undelivered, when not its ttl' })
  reason?: string;
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
    { deviceId: 'tablet-2', status: 'expired', updatedAt: 1795306693338, reason: 'offline' },
  ],
};
