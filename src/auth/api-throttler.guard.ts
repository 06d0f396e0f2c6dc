import { Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import { ApiRequest } from './api-key.guard';

/** Rate limits per API key (set by ApiKeyGuard, which runs first), not per client address. */
@Injectable()
export class ApiThrottlerGuard extends ThrottlerGuard {
  protected override async getTracker(req: Record<string, unknown>): Promise<string> {
    const request = req as unknown as ApiRequest;
    return request.apiKeyId ?? String(request.ip);
  }
}
