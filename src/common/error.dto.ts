import { ApiProperty, ApiPropertyOptional } from '../docs/openapi-decorators';
import { STATUS_CODES } from 'node:http';

export class FieldErrorDto {
  @ApiProperty({ description: 'The body property, `Idempotency-Key`, a path parameter, or "" for the body as a whole', example: 'ttl' })
  field!: string;
  @ApiProperty({ type: [String], example: ['ttl must not be less than 0'] }) reasons!: string[];
}

/** What every error status answers (HttpExceptionFilter), for the OpenAPI description. */
export class ErrorDto {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ example: 'Bad Request' }) error!: string;
  @ApiProperty({ example: 'ttl: ttl must not be less than 0' }) message!: string;
  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'One entry per wrong field (400 for invalid input)' })
  fields?: FieldErrorDto[];
}

/** An `@ApiResponse` for an error status: the ErrorDto shape with an example answer. */
export function errorResponse(status: number, description: string, message: string, extra: Partial<ErrorDto> = {}) {
  return { status, description, type: ErrorDto, example: { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, ...extra } };
}
