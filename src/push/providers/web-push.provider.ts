import { Agent } from 'node:https';
import * as webpush from 'web-push';
import { WebPushSettings } from '../../config/push-provider-settings';
import { PushMessage, PushRegistration } from '../push.types';
import { webPushTopic } from './collapse-key';
import { AttemptResult, PushProvider } from './push-provider';
import { classifyHttpStatus, errorMessage, networkFailure } from './http-outcome';

type WebPushRegistration = Extract<PushRegistration, { provider: 'webpush' }>;

export interface WebPushOptions {
  requestTimeoutMs: number;
  maxSockets: number;
  /** Extra trusted CAs for this provider only (tests); production trusts NODE_EXTRA_CA_CERTS. */
  ca?: string;
}

/**
 * Web Push (RFC 8030) through the `web-push` library: VAPID (RFC 8292) and `aes128gcm` payload
 * encryption (RFC 8291). The payload is the JSON object the socket's `notification` event carries.
 */
export class WebPushProvider implements PushProvider<WebPushRegistration> {
  readonly name = 'webpush' as const;
  private readonly agent: Agent;

  constructor(
    private readonly settings: WebPushSettings,
    private readonly options: WebPushOptions,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets, ca: options.ca });
  }

  async attempt(registration: WebPushRegistration, message: PushMessage): Promise<AttemptResult> {
    const { notification, ttlSeconds } = message;
    const visible = Boolean(notification.title || notification.body);
    try {
      await webpush.sendNotification(registration.subscription, JSON.stringify(notification), {
        vapidDetails: this.settings,
        TTL: ttlSeconds,
        // `high` wakes a sleeping device at once: right for what the user will see, not for silent data.
        urgency: visible ? 'high' : 'normal',
        topic: notification.collapseKey === undefined ? undefined : webPushTopic(notification.collapseKey),
        contentEncoding: 'aes128gcm',
        timeout: this.options.requestTimeoutMs,
        agent: this.agent,
      });
      return { kind: 'sent' };
    } catch (error) {
      if (error instanceof webpush.WebPushError) {
        return classifyHttpStatus(error.statusCode, error.headers, `push service answered ${error.statusCode} ${String(error.body ?? '').slice(0, 200)}`.trim());
      }
      return networkFailure(error) ?? { kind: 'rejected', detail: errorMessage(error) };
    }
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}
