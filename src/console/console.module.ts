import { Module } from '@nestjs/common';
import { PresenceModule } from '../presence/presence.module';
import { ConsoleController } from './console.controller';
import { OpsStatsController } from './ops-stats.controller';
import { OpsStatsService } from './ops-stats.service';

/** The ops console at /console and the read endpoint only it needs (GET /v1/ops/stats). */
@Module({ imports: [PresenceModule], controllers: [ConsoleController, OpsStatsController], providers: [OpsStatsService] })
export class ConsoleModule {}
