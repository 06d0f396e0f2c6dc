import { Module } from '@nestjs/common';
import { ChannelModule } from '../gateway/channel.module';
import { PresenceModule } from '../presence/presence.module';
import { DevicesController } from './devices.controller';

@Module({ imports: [PresenceModule, ChannelModule], controllers: [DevicesController] })
export class DevicesModule {}
