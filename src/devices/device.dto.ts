import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DeviceView, InstanceView } from '../presence/presence.types';

export class DeviceDto {
  @ApiProperty() deviceId!: string;
  @ApiProperty() userId!: string;
  @ApiProperty() online!: boolean;
  @ApiPropertyOptional() platform?: string;
  @ApiPropertyOptional({ description: 'Instance holding the socket (online only)' }) instanceId?: string;
  @ApiPropertyOptional({ description: 'epoch ms (online only)' }) connectedAt?: number;
  @ApiPropertyOptional({ description: 'epoch ms' }) lastHeartbeatAt?: number;
  @ApiPropertyOptional({ description: 'epoch ms when presence runs out without a heartbeat (online only)' }) expiresAt?: number;
  @ApiPropertyOptional({ description: 'heartbeat interval in use, ms (online only)' }) interval?: number;
  @ApiPropertyOptional({ description: 'epoch ms of the last sign of life' }) lastSeenAt?: number;
  @ApiPropertyOptional({ enum: ['foreground', 'background'], description: 'as the last heartbeat said' }) appState?: string;
  @ApiPropertyOptional({ description: 'network key the device announced' }) network?: string;
  @ApiProperty({ description: 'seq of the last presence event of the device (0 before any): a receiver that has it is up to date' }) seq!: number;
}

export class UserDevicesDto {
  @ApiProperty() userId!: string;
  @ApiProperty({ type: [DeviceDto] }) devices!: DeviceDto[];
}

export class InstanceDto {
  @ApiProperty() instanceId!: string;
  @ApiProperty() online!: number;
  @ApiProperty({ description: 'epoch ms' }) lastSeenAt!: number;
}

export class NetworkDto {
  @ApiProperty() network!: string;
  @ApiProperty({ description: 'stable-interval samples (7 days)' }) samples!: number;
  @ApiPropertyOptional({ description: 'starting interval new devices on this network get in ready (ms)' }) recommendedInterval?: number;
}

export class PresenceSummaryDto {
  @ApiProperty() online!: number;
  @ApiProperty({ type: [InstanceDto] }) instances!: InstanceView[];
  @ApiProperty({ type: [NetworkDto], description: 'what smart heartbeats learned, most recent networks first' }) networks!: NetworkDto[];
}

/** The public shape: no session id (an internal handle), undefined fields dropped. */
export function toDeviceDto(v: DeviceView): DeviceDto {
  const { sessionId: _session, ...rest } = v;
  return Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)) as unknown as DeviceDto;
}
