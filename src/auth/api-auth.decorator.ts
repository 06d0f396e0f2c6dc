import { applyDecorators, SetMetadata, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '../docs/openapi-decorators';
import { errorResponse } from '../common/error.dto';
import { ApiAuthGuard, OPS_TOKEN_READS } from './api-auth.guard';

/**
 * The OpenAPI security scheme of `/v1`: `Authorization: Bearer <one of API_KEYS>`. An opaque key,
 * declared without `bearerFormat: JWT` (DocumentBuilder.addBearerAuth's default), so generated
 * clients and Swagger UI do not expect a token they could decode.
 */
export const API_KEY_SCHEME = 'apiKey';

/** A backend-service endpoint: bearer API key, failed authentications per address, the per-key rate limit. */
export function ApiAuth(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    UseGuards(ApiAuthGuard),
    ApiBearerAuth(API_KEY_SCHEME),
    ApiResponse(errorResponse(401, 'Missing or wrong API key', 'API key is not valid')),
    ApiResponse(
      errorResponse(
        429,
        'Rate limit for this API key exceeded, or too many failed authentications from this address (see Retry-After)',
        'rate limit of 6000 requests per 60000 ms for this API key exceeded',
      ),
    ),
    ApiResponse(errorResponse(503, 'Redis unavailable: the rate limit cannot be counted (Retry-After)', 'presence store unavailable, retry later')),
  );
}

/**
 * A read that an operator holding OPS_TOKEN may make as well as a backend with an API key (the
 * ops console logs in with either). Writes never carry it: OPS_TOKEN does not send or disconnect.
 */
export function OpsTokenReads(): MethodDecorator {
  return applyDecorators(
    SetMetadata(OPS_TOKEN_READS, true),
    ApiResponse(errorResponse(401, 'Missing or wrong API key (or OPS_TOKEN, which this read also accepts)', 'API key or OPS_TOKEN is not valid')),
  );
}
