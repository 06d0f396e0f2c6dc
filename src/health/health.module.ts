import { Module } from '@nestjs/common';
import { ChannelModule } from '../channel/channel.module';
import { GatewayModule } from '../gateway/gateway.module';
import { PresenceModule } from '../presence/presence.module';
import { HealthController } from './health.controller';

@Module({ imports: [PresenceModule, GatewayModule, ChannelModule], controllers: [HealthController] })
export class HealthModule {}
