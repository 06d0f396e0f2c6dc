import * as jwt from 'jsonwebtoken';

/** Apple refuses tokens older than an hour and updates more often than every 20 minutes; 40 sits between. */
export const APNS_TOKEN_REFRESH_MS = 40 * 60_000;

/**
 * The APNs provider token (ES256 JWT: header `kid`, claims `iss` = team id and `iat`), made once
 * and reused for every request until it is due, so Apple never sees a token per push.
 */
export class ApnsProviderToken {
  private current?: { token: string; issuedAt: number };

  constructor(
    private readonly key: string,
    private readonly keyId: string,
    private readonly teamId: string,
    private readonly now: () => number,
  ) {}

  get(): string {
    const now = this.now();
    if (!this.current || now - this.current.issuedAt >= APNS_TOKEN_REFRESH_MS) {
      const iat = Math.floor(now / 1000);
      const token = jwt.sign({ iss: this.teamId, iat }, this.key, { algorithm: 'ES256', keyid: this.keyId });
      this.current = { token, issuedAt: now };
    }
    return this.current.token;
  }

  /** Apple said ExpiredProviderToken: the next request makes a new one. */
  expire(): void {
    this.current = undefined;
  }
}
