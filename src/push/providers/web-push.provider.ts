import { Agent } from 'node:https';
import type * as WebPushLibrary from 'web-push';
import { WebPushSettings } from '../../config/push-provider-settings';
import { PushMessage, PushRegistration } from '../push.types';
import { webPushTopic } from './collapse-key';
import { AttemptResult, PushProvider } from './push-provider';
import { classifyHttpStatus, errorMessage, networkFailure } from './http-outcome';

type WebPushRegistration = Extract<PushRegistration, { provider: 'webpush' }>;

/**
 * `web-push` and what it brings (asn1.js, bn.js, http_ece: some 250 KB of source, about 1 MB of
 * heap once loaded) load with the first Web Push provider, not with every gateway: most run
 * without VAPID keys and never send one.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadWebPush = (): typeof WebPushLibrary => require('web-push') as typeof WebPushLibrary;

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
  private readonly webpush = loadWebPush();

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
      await this.webpush.sendNotification(registration.subscription, JSON.stringify(notification), {
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
      if (error instanceof this.webpush.WebPushError) {
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
