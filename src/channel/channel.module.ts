import { Module } from '@nestjs/common';
import { DeviceChannel } from './device-channel';

/** DeviceChannel on its own, so both the gateway and delivery can use it without a module cycle. */
@Module({ providers: [DeviceChannel], exports: [DeviceChannel] })
export class ChannelModule {}
