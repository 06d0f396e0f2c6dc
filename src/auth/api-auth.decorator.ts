import { applyDecorators, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ApiAuthGuard } from './api-auth.guard';

/** A backend-service endpoint: bearer API key, failed authentications per address, the per-key rate limit. */
export function ApiAuth(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    UseGuards(ApiAuthGuard),
    ApiBearerAuth(),
    ApiResponse({ status: 401, description: 'Missing or wrong API key' }),
    ApiResponse({
      status: 429,
      description: 'Rate limit for this API key exceeded, or too many failed authentications from this address (see Retry-After)',
    }),
    ApiResponse({ status: 503, description: 'Redis unavailable: the rate limit cannot be counted (Retry-After)' }),
  );
}
