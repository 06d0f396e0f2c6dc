import { createParamDecorator, ExecutionContext, UnsupportedMediaTypeException } from '@nestjs/common';
import type { Request } from 'express';

/** Whether the request carries a body at all (as body-parser decides it). */
export function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The request body exactly as the JSON parser left it (no pipe rebuilds it unless one is passed).
 * The parser skips bodies of other media types; such a body is answered 415, not mistaken for a
 * missing one.
 */
export const JsonBody = createParamDecorator((_data: unknown, ctx: ExecutionContext): unknown => {
  const req = ctx.switchToHttp().getRequest<Request>();
  const body: unknown = req.body;
  if (body === undefined && hasBody(req)) throw new UnsupportedMediaTypeException('Content-Type must be application/json');
  return body;
});
