import { Module } from '@nestjs/common';
import { PresenceModule } from '../presence/presence.module';
import { EventFloorsService } from './event-floors.service';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';

@Module({ imports: [PresenceModule], controllers: [EventsController], providers: [EventsService, EventFloorsService] })
export class EventsModule {}
