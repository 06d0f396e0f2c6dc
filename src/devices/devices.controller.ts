import { Controller, Delete, Get, HttpCode, NotFoundException, Param } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiAuth } from '../auth/api-auth.decorator';
import { Clock } from '../common/clock';
import { DeviceChannel } from '../gateway/device-channel';
import { MAX_LISTED_NETWORKS, statsOf } from '../presence/network-intervals';
import { PresenceStore } from '../presence/presence.store';
import { DeviceDto, PresenceSummaryDto, toDeviceDto, UserDevicesDto } from './device.dto';

@ApiTags('presence')
@ApiAuth()
@Controller('v1')
export class DevicesController {
  constructor(
    private readonly store: PresenceStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
  ) {}

  @Get('devices/:deviceId')
  @ApiOperation({ summary: 'Presence of one device' })
  @ApiResponse({ status: 200, type: DeviceDto })
  @ApiResponse({ status: 404, description: 'Device never seen, or forgotten after DEVICE_RETENTION_DAYS' })
  async device(@Param('deviceId') deviceId: string): Promise<DeviceDto> {
    const [view] = await this.store.getDevices([deviceId], this.clock.now());
    if (!view) throw new NotFoundException(`device ${deviceId} is not known`);
    return toDeviceDto(view);
  }

  @Get('users/:userId/devices')
  @ApiOperation({ summary: "A user's known devices, online or not" })
  @ApiResponse({ status: 200, type: UserDevicesDto })
  async userDevices(@Param('userId') userId: string): Promise<UserDevicesDto> {
    const devices = await this.store.listUserDevices(userId, this.clock.now());
    return { userId, devices: devices.map(toDeviceDto) };
  }

  @Get('presence')
  @ApiOperation({ summary: 'Devices online in total and per gateway instance' })
  @ApiResponse({ status: 200, type: PresenceSummaryDto })
  async presence(): Promise<PresenceSummaryDto> {
    const now = this.clock.now();
    const [online, instances, networks] = await Promise.all([
      this.store.countOnline(now),
      this.store.listInstances(now),
      this.store.listNetworks(now, MAX_LISTED_NETWORKS),
    ]);
    return { online, instances, networks: networks.map((n) => statsOf(n.network, n.histogram)) };
  }

  @Delete('devices/:deviceId/session')
  @HttpCode(204)
  @ApiOperation({ summary: 'Disconnect a device (it is offline at once)' })
  @ApiResponse({ status: 204, description: 'Disconnected' })
  @ApiResponse({ status: 404, description: 'Device not online' })
  async disconnect(@Param('deviceId') deviceId: string): Promise<void> {
    const now = this.clock.now();
    const [view] = await this.store.getDevices([deviceId], now);
    if (!view?.online || !view.sessionId) throw new NotFoundException(`device ${deviceId} is not online`);
    await this.store.disconnect([{ deviceId, sessionId: view.sessionId, userId: view.userId, instanceId: view.instanceId ?? '' }], now);
    this.channel.kick(view.sessionId);
  }
}
