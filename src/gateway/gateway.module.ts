import { Module } from '@nestjs/common';
import { DeviceTokenVerifier } from '../auth/device-token.verifier';
import { PresenceModule } from '../presence/presence.module';
import { ChannelModule } from '../channel/channel.module';
import { DeviceGateway } from './device.gateway';
import { DrainService } from './drain.service';
import { InstanceRegistry } from './instance-registry.service';
import { OfflineGraceService } from './offline-grace.service';
import { SessionSweeper } from './session-sweeper.service';
import { SessionService } from './session.service';
import { TokenExpiry } from './token-expiry.service';

@Module({
  imports: [PresenceModule, ChannelModule],
  providers: [DeviceGateway, DeviceTokenVerifier, SessionService, SessionSweeper, InstanceRegistry, DrainService, TokenExpiry, OfflineGraceService],
  exports: [SessionSweeper],
})
export class GatewayModule {}
