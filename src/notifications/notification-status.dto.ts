import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class TargetStatusDto {
  @ApiProperty() deviceId!: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'expired', 'replaced'] }) status!: string;
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
