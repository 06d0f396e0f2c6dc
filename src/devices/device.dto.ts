import { ApiProperty, ApiPropertyOptional } from '../docs/openapi-decorators';
import { DeviceView, InstanceView } from '../presence/presence.types';

export class DevicePushDto {
  @ApiProperty({ enum: ['webpush', 'apns', 'fcm'], example: 'fcm' }) provider!: string;
}

export class DeviceDto {
  @ApiProperty({ example: 'phone-1' }) deviceId!: string;
  @ApiProperty({ example: 'user-42' }) userId!: string;
  @ApiProperty({ example: true }) online!: boolean;
  @ApiPropertyOptional({ example: 'ios' }) platform?: string;
  @ApiPropertyOptional({ description: 'Instance holding the socket (online only)', example: 'gw-1a2b3c4d' }) instanceId?: string;
  @ApiPropertyOptional({ description: 'epoch ms (online only)', example: 1795306693338 }) connectedAt?: number;
  @ApiPropertyOptional({ description: 'epoch ms', example: 1795306718338 }) lastHeartbeatAt?: number;
  @ApiPropertyOptional({ description: 'epoch ms when presence runs out without a heartbeat (online only)', example: 1795306783838 }) expiresAt?: number;
  @ApiPropertyOptional({ description: 'ms of presence left without a heartbeat, as of this answer (online only; what `PTTL` on its Redis key shows)', example: 62500 })
  ttl?: number;
  @ApiPropertyOptional({ description: 'heartbeat interval in use, ms (online only)', example: 25000 }) interval?: number;
  @ApiPropertyOptional({ description: 'epoch ms of the last sign of life', example: 1795306718338 }) lastSeenAt?: number;
  @ApiPropertyOptional({ enum: ['foreground', 'background'], description: 'as the last heartbeat said', example: 'foreground' }) appState?: string;
  @ApiPropertyOptional({ description: 'network key the device announced', example: 'wifi:home-5g' }) network?: string;
  @ApiProperty({ description: 'seq of the last recorded presence event of the device (0 before any): a receiver that has it is up to date (an offline held by PRESENCE_EVENT_GRACE_MS is not recorded yet)', example: 7 }) seq!: number;
  @ApiPropertyOptional({ type: DevicePushDto, description: 'The native push target the device registered (register_push), without its token' })
  push?: DevicePushDto;
}

export class UserDevicesDto {
  @ApiProperty({ example: 'user-42' }) userId!: string;
  @ApiProperty({ type: [DeviceDto] }) devices!: DeviceDto[];
}

export class InstanceDto {
  @ApiProperty({ example: 'gw-1a2b3c4d' }) instanceId!: string;
  @ApiProperty({ example: 1250 }) online!: number;
  @ApiProperty({ description: 'epoch ms', example: 1795306718338 }) lastSeenAt!: number;
}

export class NetworkDto {
  @ApiProperty({ example: 'wifi:home-5g' }) network!: string;
  @ApiProperty({ description: 'stable-interval samples (7 days)', example: 12 }) samples!: number;
  @ApiPropertyOptional({ description: 'starting interval new devices on this network get in ready (ms)', example: 45000 }) recommendedInterval?: number;
}

export class PresenceSummaryDto {
  @ApiProperty({ example: 2480 }) online!: number;
  @ApiProperty({ type: [InstanceDto] }) instances!: InstanceView[];
  @ApiProperty({ type: [NetworkDto], description: 'what smart heartbeats learned, most recent networks first' }) networks!: NetworkDto[];
}

/** The public shape: no session id (an internal handle), the TTL left at `now`, undefined fields dropped. */
export function toDeviceDto(v: DeviceView, now: number): DeviceDto {
  const { sessionId: _session, ...rest } = v;
  const ttl = v.online && v.expiresAt !== undefined ? Math.max(0, v.expiresAt - now) : undefined;
  return Object.fromEntries(Object.entries({ ...rest, ttl }).filter(([, value]) => value !== undefined)) as unknown as DeviceDto;
}
