import { Module } from '@nestjs/common';
import { GatewayModule } from '../gateway/gateway.module';
import { PresenceModule } from '../presence/presence.module';
import { DevicesController } from './devices.controller';

@Module({ imports: [PresenceModule, GatewayModule], controllers: [DevicesController] })
export class DevicesModule {}
