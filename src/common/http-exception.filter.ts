import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 1;

/** Errors ioredis raises when Redis cannot be reached or does not answer in time. */
export function isDependencyError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|offline queue|LOADING|READONLY|MASTERDOWN/.test(
      err.message,
    )
  );
}

/**
 * Every error leaves as JSON `{ statusCode, error, message }`. A dependency failure becomes a 503
 * with Retry-After (never a 2xx for work that was not stored); anything unexpected is logged and
 * becomes a 500 without internals.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const error = STATUS_CODES[status] ?? 'Error';
      const payload =
        typeof body === 'string' ? { statusCode: status, error, message: body } : { statusCode: status, error, ...(body) };
      response.status(status).json(payload);
      return;
    }
    if (isDependencyError(exception)) {
      this.logger.warn(`dependency unavailable: ${(exception as Error).message}`);
      response
        .status(503)
        .setHeader('Retry-After', String(RETRY_AFTER_SECONDS))
        .json({ statusCode: 503, error: 'Service Unavailable', message: 'presence store unavailable, retry later' });
      return;
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    response.status(500).json({ statusCode: 500, error: 'Internal Server Error', message: 'unexpected error' });
  }
}
