import { Module } from '@nestjs/common';
import { PresenceModule } from '../presence/presence.module';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';

@Module({ imports: [PresenceModule], controllers: [EventsController], providers: [EventsService] })
export class EventsModule {}
