import { connect, ClientHttp2Session, constants, IncomingHttpHeaders } from 'node:http2';
import { ApnsSettings } from '../../config/push-provider-settings';
import { PushMessage, PushRegistration } from '../push.types';
import { ApnsProviderToken } from './apns-token';
import { apnsCollapseId } from './collapse-key';
import { classifyHttpStatus, errorMessage, networkFailure } from './http-outcome';
import { AttemptResult, PushProvider } from './push-provider';

type ApnsRegistration = Extract<PushRegistration, { provider: 'apns' }>;

export interface ApnsOptions {
  requestTimeoutMs: number;
  now: () => number;
  /** Extra trusted CAs for this provider only (tests); production trusts NODE_EXTRA_CA_CERTS. */
  ca?: string;
}

/** Reasons Apple gives (with 400 or 410) when the device token itself is no good any more. */
const GONE_REASONS = new Set(['BadDeviceToken', 'Unregistered', 'ExpiredToken']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * APNs over HTTP/2 with a token key: one long-lived session per origin (Apple asks senders to keep
 * connections open rather than open one per push), opened again when it closes or fails.
 */
export class ApnsProvider implements PushProvider<ApnsRegistration> {
  readonly name = 'apns' as const;
  private session?: ClientHttp2Session;
  private readonly active = new WeakMap<ClientHttp2Session, number>();
  private readonly token: ApnsProviderToken;

  constructor(
    private readonly settings: ApnsSettings,
    private readonly options: ApnsOptions,
  ) {
    this.token = new ApnsProviderToken(settings.key, settings.keyId, settings.teamId, options.now);
  }

  async attempt(registration: ApnsRegistration, message: PushMessage): Promise<AttemptResult> {
    // The token goes into the path: only hex, so no device can steer the request elsewhere.
    if (!/^[0-9a-fA-F]{16,200}$/.test(registration.token)) return { kind: 'rejected', detail: 'APNs device token is not hex' };
    let response: { status: number; headers: IncomingHttpHeaders; body: string };
    try {
      response = await this.request(registration.token, message);
    } catch (error) {
      return networkFailure(error) ?? { kind: 'retry', detail: errorMessage(error) };
    }
    const reason = readReason(response.body);
    const detail = `APNs answered ${response.status}${reason ? ` ${reason}` : ''}`;
    if (response.status === 200) return { kind: 'sent' };
    if (response.status === 410 || GONE_REASONS.has(reason ?? '')) return { kind: 'gone', detail };
    if (response.status === 403 && reason === 'ExpiredProviderToken') {
      this.token.expire();
      return { kind: 'retry', detail, retryAfterMs: 0 };
    }
    return classifyHttpStatus(response.status, response.headers, detail, this.options.now());
  }

  close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (!session || session.closed) return Promise.resolve();
    return new Promise((resolve) => session.close(() => resolve()));
  }

  private request(deviceToken: string, message: PushMessage): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    const { notification, ttlSeconds } = message;
    const visible = Boolean(notification.title || notification.body);
    const headers: Record<string, string> = {
      ':method': 'POST',
      ':path': `/3/device/${deviceToken}`,
      authorization: `bearer ${this.token.get()}`,
      'apns-topic': this.settings.topic,
      // A push without title or body is a background update: Apple requires that type and priority 5 for it.
      'apns-push-type': visible ? 'alert' : 'background',
      'apns-priority': visible ? '10' : '5',
      // 0: deliver now or never; otherwise the moment the notification expires.
      'apns-expiration': String(ttlSeconds > 0 ? Math.floor(this.options.now() / 1000) + ttlSeconds : 0),
      'content-type': 'application/json',
    };
    if (notification.collapseKey !== undefined) headers['apns-collapse-id'] = apnsCollapseId(notification.collapseKey);
    if (UUID.test(notification.id)) headers['apns-id'] = notification.id.toLowerCase();
    const aps: Record<string, unknown> = visible
      ? { alert: { title: notification.title, body: notification.body } }
      : { 'content-available': 1 };
    const body = JSON.stringify({ aps, id: notification.id, data: notification.data });

    const session = this.connection();
    // Referenced only while a request is on it: an idle session never holds the process open.
    this.active.set(session, (this.active.get(session) ?? 0) + 1);
    session.ref();
    const settle = (): void => {
      const left = (this.active.get(session) ?? 1) - 1;
      this.active.set(session, left);
      if (left === 0 && !session.destroyed) session.unref();
    };
    return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = session.request(headers);
      req.setTimeout(this.options.requestTimeoutMs, () => {
        reject(Object.assign(new Error('APNs request timed out'), { code: 'ETIMEDOUT' }));
        req.close(constants.NGHTTP2_CANCEL);
        // No answer in time usually means a connection that died without a FIN or RST: drop it, so
        // the retry (and every push after it) gets a new one instead of waiting on the dead one.
        if (this.session === session) this.session = undefined;
        session.destroy();
      });
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on('response', (h) => {
        status = Number(h[':status']);
        responseHeaders = h;
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      let ended = false;
      req.on('end', () => {
        ended = true;
        if (status) resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') });
      });
      req.on('error', reject);
      // A session torn down under the stream can close it without an error or a whole answer.
      req.on('close', () => {
        if (!ended || !status) reject(Object.assign(new Error('APNs closed the stream without an answer'), { code: 'ECONNRESET' }));
      });
      req.end(body);
    }).finally(settle);
  }

  private connection(): ClientHttp2Session {
    const live = this.session;
    if (live && !live.closed && !live.destroyed) return live;
    const session = connect(this.settings.url, { ca: this.options.ca });
    const forget = (): void => {
      if (this.session === session) this.session = undefined;
    };
    // A failed or closed session is dropped; the next push opens a new one. Its streams fail and are retried.
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    this.session = session;
    return session;
  }
}

function readReason(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { reason?: unknown };
    return typeof parsed.reason === 'string' ? parsed.reason : undefined;
  } catch {
    return undefined;
  }
}
