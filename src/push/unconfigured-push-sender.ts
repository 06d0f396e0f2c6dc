import { Injectable } from '@nestjs/common';
import { PushMessage, PushOutcome, PushProviderName, PushRegistration, PushSender } from './push.types';

/** The PushSender of a gateway without provider settings: every provider is off, so every push ends `failed` `not_configured`. */
@Injectable()
export class UnconfiguredPushSender extends PushSender {
  enabled(): boolean {
    return false;
  }

  async send(registration: PushRegistration, _message: PushMessage): Promise<PushOutcome> {
    const provider: PushProviderName = registration.provider;
    return { status: 'failed', provider, reason: 'not_configured' };
  }
}
