import { applyDecorators, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ApiKeyGuard } from './api-key.guard';
import { ApiThrottlerGuard } from './api-throttler.guard';

/** A backend-service endpoint: bearer API key, then the per-key rate limit. */
export function ApiAuth(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    UseGuards(ApiKeyGuard, ApiThrottlerGuard),
    ApiBearerAuth(),
    ApiResponse({ status: 401, description: 'Missing or wrong API key' }),
    ApiResponse({ status: 429, description: 'Rate limit for this API key exceeded (see Retry-After)' }),
  );
}
