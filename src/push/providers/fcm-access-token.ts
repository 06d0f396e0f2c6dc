import { Agent } from 'node:https';
import * as jwt from 'jsonwebtoken';
import { FcmServiceAccount } from '../../config/push-provider-settings';
import { httpsRequest } from './https-client';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** A cached token is replaced this long before Google says it expires, so no request carries a dying one. */
const EARLY_REFRESH_MS = 5 * 60_000;

/** The token endpoint refused or failed; `retryable` says whether asking again later can help. */
export class FcmTokenError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfter?: string,
  ) {
    super(message);
  }
}

/**
 * The service account's OAuth 2.0 access token (RFC 7523 JWT bearer grant at its `token_uri`, an
 * RS256 assertion signed with `jsonwebtoken`), fetched once and shared by every push until shortly
 * before it expires. Concurrent callers share one fetch. Not Google's auth library: its JWT client
 * (google-auth-library 11.3.4, checked) posts to a fixed https://oauth2.googleapis.com/token with
 * that as `aud`, ignoring the account's `token_uri`, which the contract says decides where tokens
 * come from (and which the local tests point at their own endpoint).
 */
export class FcmAccessToken {
  private current?: { token: string; refreshAt: number };
  private pending?: Promise<string>;

  constructor(
    private readonly account: FcmServiceAccount,
    private readonly agent: Agent,
    private readonly timeoutMs: number,
    private readonly now: () => number,
  ) {}

  async get(): Promise<string> {
    if (this.current && this.now() < this.current.refreshAt) return this.current.token;
    this.pending ??= this.fetch().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** FCM said 401: the next push fetches a new token. */
  invalidate(token: string): void {
    if (this.current?.token === token) this.current = undefined;
  }

  private async fetch(): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    const assertion = jwt.sign(
      { iss: this.account.clientEmail, scope: FCM_SCOPE, aud: this.account.tokenUri, iat, exp: iat + 3600 },
      this.account.privateKey,
      // jsonwebtoken refuses `keyid: undefined`; an account JSON without private_key_id gets no `kid`.
      { algorithm: 'RS256', ...(this.account.privateKeyId ? { keyid: this.account.privateKeyId } : {}) },
    );
    const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
    const res = await httpsRequest(this.agent, this.account.tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
      timeoutMs: this.timeoutMs,
    });
    const parsed = parseJson(res.body);
    if (res.status !== 200 || typeof parsed.access_token !== 'string') {
      const retryable = res.status === 429 || res.status >= 500;
      const retryAfter = typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined;
      const why = [parsed.error, parsed.error_description].filter((v): v is string => typeof v === 'string').join(': ');
      throw new FcmTokenError(`OAuth token endpoint answered ${res.status} ${why}`.trim(), retryable, retryAfter);
    }
    const lifetimeMs = (typeof parsed.expires_in === 'number' ? parsed.expires_in : 3600) * 1000;
    // Short-lived tokens (tests, odd servers) are kept for half their life instead.
    const keepMs = lifetimeMs > 2 * EARLY_REFRESH_MS ? lifetimeMs - EARLY_REFRESH_MS : lifetimeMs / 2;
    this.current = { token: parsed.access_token, refreshAt: this.now() + keepMs };
    return parsed.access_token;
  }
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
