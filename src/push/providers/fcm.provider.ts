import { Agent } from 'node:https';
import { FcmSettings } from '../../config/push-provider-settings';
import { NotificationPayload } from '../../channel/socket-events';
import { PushMessage, PushRegistration } from '../push.types';
import { apnsCollapseId, webPushTopic } from './collapse-key';
import { FcmAccessToken, FcmTokenError } from './fcm-access-token';
import { classifyHttpStatus, errorMessage, networkFailure } from './http-outcome';
import { httpsRequest } from './https-client';
import { AttemptResult, PushProvider } from './push-provider';
import { parseRetryAfter } from '../../common/retry-after';

type FcmRegistration = Extract<PushRegistration, { provider: 'fcm' }>;

export interface FcmOptions {
  requestTimeoutMs: number;
  maxSockets: number;
  now: () => number;
  /** Extra trusted CAs for this provider only (tests); production trusts NODE_EXTRA_CA_CERTS. */
  ca?: string;
}

/**
 * FCM HTTP v1 (`projects/<id>/messages:send`) with the service account's OAuth token. `data` must
 * be a map of strings: it carries `id` and the notification's `data` JSON-encoded under `data`
 * (one key, so no field of the app's data can collide with FCM's reserved keys).
 */
export class FcmProvider implements PushProvider<FcmRegistration> {
  readonly name = 'fcm' as const;
  private readonly agent: Agent;
  private readonly accessToken: FcmAccessToken;

  constructor(
    private readonly settings: FcmSettings,
    private readonly options: FcmOptions,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets, ca: options.ca });
    this.accessToken = new FcmAccessToken(settings.serviceAccount, this.agent, options.requestTimeoutMs, options.now);
  }

  async attempt(registration: FcmRegistration, message: PushMessage): Promise<AttemptResult> {
    let token: string;
    try {
      token = await this.accessToken.get();
    } catch (error) {
      if (error instanceof FcmTokenError) {
        if (!error.retryable) return { kind: 'rejected', detail: error.message };
        return { kind: 'retry', detail: error.message, retryAfterMs: parseRetryAfter(error.retryAfter, this.options.now()) };
      }
      return networkFailure(error) ?? { kind: 'retry', detail: errorMessage(error) };
    }
    const url = `${this.settings.url}/v1/projects/${encodeURIComponent(this.settings.serviceAccount.projectId)}/messages:send`;
    let res;
    try {
      res = await httpsRequest(this.agent, url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ message: fcmMessage(registration.token, message, this.options.now()) }),
        timeoutMs: this.options.requestTimeoutMs,
      });
    } catch (error) {
      return networkFailure(error) ?? { kind: 'retry', detail: errorMessage(error) };
    }
    const { status: errorStatus, code } = readError(res.body);
    const detail = `FCM answered ${res.status}${errorStatus ? ` ${errorStatus}` : ''}${code ? ` ${code}` : ''}`;
    if (res.status === 401) {
      // The token was revoked or expired early: fetch a new one and try again at once.
      this.accessToken.invalidate(token);
      return { kind: 'retry', detail, retryAfterMs: 0 };
    }
    if (code === 'UNREGISTERED') return { kind: 'gone', detail };
    return classifyHttpStatus(res.status, res.headers, detail, this.options.now());
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}

/** The v1 `Message` for one device. */
export function fcmMessage(token: string, { notification, ttlSeconds }: PushMessage, nowMs: number): Record<string, unknown> {
  const visible = Boolean(notification.title || notification.body);
  const message: Record<string, unknown> = {
    token,
    data: fcmData(notification),
    android: {
      // HIGH wakes the device at once (Android's Doze allows it for user-visible messages).
      priority: visible ? 'HIGH' : 'NORMAL',
      ttl: `${ttlSeconds}s`,
      ...(notification.collapseKey !== undefined ? { collapse_key: notification.collapseKey } : {}),
    },
    // FCM also reaches iOS and web apps; their own headers get the same collapse, expiry and urgency.
    apns: {
      headers: {
        'apns-priority': visible ? '10' : '5',
        'apns-expiration': String(ttlSeconds > 0 ? Math.floor(nowMs / 1000) + ttlSeconds : 0),
        ...(notification.collapseKey !== undefined ? { 'apns-collapse-id': apnsCollapseId(notification.collapseKey) } : {}),
      },
    },
    webpush: {
      headers: {
        TTL: String(ttlSeconds),
        Urgency: visible ? 'high' : 'normal',
        ...(notification.collapseKey !== undefined ? { Topic: webPushTopic(notification.collapseKey) } : {}),
      },
    },
  };
  if (visible) message.notification = { ...(notification.title ? { title: notification.title } : {}), ...(notification.body ? { body: notification.body } : {}) };
  return message;
}

/** FCM's `data` takes strings only: `id`, and the app's data as JSON (absent when there is none). */
export function fcmData(notification: NotificationPayload): Record<string, string> {
  const data: Record<string, string> = { id: notification.id };
  if (notification.data !== undefined) data.data = JSON.stringify(notification.data);
  return data;
}

function readError(body: string): { status?: string; code?: string } {
  try {
    const parsed = JSON.parse(body) as { error?: { status?: unknown; details?: { errorCode?: unknown }[] } };
    const status = typeof parsed.error?.status === 'string' ? parsed.error.status : undefined;
    const code = parsed.error?.details?.map((d) => d.errorCode).find((c): c is string => typeof c === 'string');
    return { status, code: code ?? (status === 'NOT_FOUND' ? 'UNREGISTERED' : undefined) };
  } catch {
    return {};
  }
}
