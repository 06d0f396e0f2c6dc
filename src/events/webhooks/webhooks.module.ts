import { Module } from '@nestjs/common';
import { PresenceModule } from '../../presence/presence.module';
import { WebhookService } from './webhook.service';

/** Delivery of the event log to WEBHOOK_URL (nothing runs without one). */
@Module({ imports: [PresenceModule], providers: [WebhookService] })
export class WebhooksModule {}
