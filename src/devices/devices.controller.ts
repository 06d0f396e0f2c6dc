import { Controller, Delete, Get, HttpCode, NotFoundException, Param } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '../docs/openapi-decorators';
import { ApiAuth, OpsTokenReads } from '../auth/api-auth.decorator';
import { Clock } from '../common/clock';
import { errorResponse } from '../common/error.dto';
import { PatternPipe } from '../common/pattern.pipe';
import { ID } from '../common/patterns';
import { DeviceDto, PresenceSummaryDto, toDeviceDto, UserDevicesDto } from './device.dto';
import { DevicesService } from './devices.service';

@ApiTags('presence')
@ApiAuth()
@Controller('v1')
export class DevicesController {
  constructor(
    private readonly devices: DevicesService,
    private readonly clock: Clock,
  ) {}

  @Get('devices/:deviceId')
  @OpsTokenReads()
  @ApiOperation({ summary: 'Presence of one device' })
  @ApiResponse({ status: 200, type: DeviceDto })
  @ApiResponse(errorResponse(404, 'Device never seen, or forgotten after DEVICE_RETENTION_DAYS', 'device phone-1 is not known'))
  async device(@Param('deviceId') deviceId: string): Promise<DeviceDto> {
    const view = await this.devices.device(deviceId);
    if (!view) throw new NotFoundException(ID.test(deviceId) ? `device ${deviceId} is not known` : 'device is not known');
    return toDeviceDto(view, this.clock.now());
  }

  @Get('users/:userId/devices')
  @OpsTokenReads()
  @ApiOperation({ summary: "A user's known devices, online or not" })
  @ApiResponse({ status: 200, type: UserDevicesDto })
  @ApiResponse(
    errorResponse(400, 'userId is not an id', 'userId: userId must be an id of 1-128 characters [A-Za-z0-9._:@-]', {
      fields: [{ field: 'userId', reasons: ['userId must be an id of 1-128 characters [A-Za-z0-9._:@-]'] }],
    }),
  )
  async userDevices(@Param('userId', new PatternPipe(ID, 'userId')) userId: string): Promise<UserDevicesDto> {
    const devices = await this.devices.userDevices(userId);
    const now = this.clock.now();
    return { userId, devices: devices.map((d) => toDeviceDto(d, now)) };
  }

  @Get('presence')
  @OpsTokenReads()
  @ApiOperation({ summary: 'Devices online in total and per gateway instance' })
  @ApiResponse({ status: 200, type: PresenceSummaryDto })
  async presence(): Promise<PresenceSummaryDto> {
    return this.devices.summary();
  }

  @Delete('devices/:deviceId/session')
  @HttpCode(204)
  @ApiOperation({ summary: 'Disconnect a device (it is offline at once)' })
  @ApiResponse({ status: 204, description: 'Disconnected' })
  @ApiResponse(errorResponse(404, 'Device not online', 'device phone-1 is not online'))
  async disconnect(@Param('deviceId') deviceId: string): Promise<void> {
    if (!(await this.devices.kick(deviceId))) {
      throw new NotFoundException(ID.test(deviceId) ? `device ${deviceId} is not online` : 'device is not online');
    }
  }
}
