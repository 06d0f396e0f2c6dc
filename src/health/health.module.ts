import { Module } from '@nestjs/common';
import { GatewayModule } from '../gateway/gateway.module';
import { PresenceModule } from '../presence/presence.module';
import { HealthController } from './health.controller';

@Module({ imports: [PresenceModule, GatewayModule], controllers: [HealthController] })
export class HealthModule {}
