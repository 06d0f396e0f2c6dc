import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

export type KeyCheck = { ok: true; keyId: string } | { ok: false; reason: string };

/**
 * Bearer API keys for backend services. Keys are compared as SHA-256 digests with
 * timingSafeEqual, and every configured key is checked, so timing reveals neither a key's
 * content nor which key matched.
 */
export class ApiKeys {
  private readonly keys: { digest: Buffer; id: string }[];

  constructor(keys: readonly string[]) {
    this.keys = keys.map((key) => ({ digest: digest(key), id: digest(key).toString('hex').slice(0, 12) }));
  }

  /** Which key an Authorization header carries, as a short non-secret id for limits and logs. */
  identify(authorization: string | undefined): KeyCheck {
    const presentedKey = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!presentedKey) return { ok: false, reason: 'Authorization: Bearer <api key> is required' };
    const presented = digest(presentedKey);
    let keyId: string | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, presented)) keyId = key.id;
    return keyId ? { ok: true, keyId } : { ok: false, reason: 'API key is not valid' };
  }
}
