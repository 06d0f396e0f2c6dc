import { createHash, createHmac } from 'node:crypto';
import type { AppConfig } from '../config/app-config';

/** A network kind shown as is: short, lower-case, like `wifi`, `cell`, `web`; anything else is `other`. */
const KIND = /^[a-z0-9]{1,12}$/;

/**
 * What metrics show for a network key: its kind and a short keyed hash (`wifi:3f9a2c1b`), never
 * the key itself, which names a home Wi-Fi or a carrier. The hash is an HMAC keyed by a digest of
 * the deployment's secrets, so every instance of one deployment labels a network alike (series
 * line up across instances) with no new variable, while someone holding the metrics but not the
 * secrets cannot test guessed SSIDs against them. Rotating the secrets starts new series.
 */
export class NetworkLabeler {
  private readonly key: Buffer;

  constructor(secrets: readonly string[]) {
    const digest = createHash('sha256').update('push-gateway network labels');
    for (const secret of secrets) digest.update('\0').update(secret);
    this.key = digest.digest();
  }

  static forConfig(config: AppConfig): NetworkLabeler {
    const jwtKey = config.jwt.kind === 'secret' ? config.jwt.secret : config.jwt.publicKey;
    return new NetworkLabeler([jwtKey, ...[...config.apiKeys].sort()]);
  }

  label(network: string): string {
    const colon = network.indexOf(':');
    const kind = colon > 0 ? network.slice(0, colon) : '';
    const hash = createHmac('sha256', this.key).update(network).digest('hex').slice(0, 8);
    return `${KIND.test(kind) ? kind : 'other'}:${hash}`;
  }
}
