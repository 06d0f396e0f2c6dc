import { Module } from '@nestjs/common';
import { ChannelModule } from '../channel/channel.module';
import { PresenceModule } from '../presence/presence.module';
import { DevicesController } from './devices.controller';
import { DevicesService } from './devices.service';

@Module({ imports: [PresenceModule, ChannelModule], controllers: [DevicesController], providers: [DevicesService] })
export class DevicesModule {}
