import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppConfig } from '../config/app-config';

export interface ApiRequest extends Request {
  /** A short, non-secret id of the key used, for rate limiting and logs. */
  apiKeyId?: string;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Bearer API keys for backend services. Keys are compared as SHA-256 digests with
 * timingSafeEqual, and every configured key is checked, so timing reveals neither a key's
 * content nor which key matched.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: { digest: Buffer; id: string }[];

  constructor(config: AppConfig) {
    this.keys = config.apiKeys.map((key) => ({ digest: digest(key), id: digest(key).toString('hex').slice(0, 12) }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<ApiRequest>();
    const header = request.headers.authorization;
    const presentedKey = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (!presentedKey) throw new UnauthorizedException('Authorization: Bearer <api key> is required');
    const presented = digest(presentedKey);
    let id: string | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, presented)) id = key.id;
    if (!id) throw new UnauthorizedException('API key is not valid');
    request.apiKeyId = id;
    return true;
  }
}
