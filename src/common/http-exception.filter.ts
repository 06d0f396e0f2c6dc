import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';
import { StoreUnavailableError } from './store-unavailable.error';
import { sendUnavailable } from './unavailable';

/**
 * Every error leaves as JSON `{ statusCode, error, message }`. A store that cannot answer becomes
 * a 503 with Retry-After (never a 2xx for work that was not stored); anything unexpected is logged
 * and becomes a 500 without internals.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (response.headersSent) {
      // Part of an answer is out: a status can no longer be given, so the client sees it cut off.
      this.logger.warn(`error after the response started: ${exception instanceof Error ? exception.message : String(exception)}`);
      response.destroy();
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const error = STATUS_CODES[status] ?? 'Error';
      const payload = typeof body === 'string' ? { statusCode: status, error, message: body } : { statusCode: status, error, ...body };
      response.status(status).json(payload);
      return;
    }
    if (exception instanceof StoreUnavailableError) {
      this.logger.warn(exception.message);
      sendUnavailable(response, 'presence store unavailable, retry later');
      return;
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    response.status(500).json({ statusCode: 500, error: 'Internal Server Error', message: 'unexpected error' });
  }
}
