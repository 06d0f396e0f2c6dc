import { Logger } from '@nestjs/common';
import type { ErrorRequestHandler } from 'express';
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** The documented error body. */
export function errorBody(statusCode: number, message: string): string {
  return JSON.stringify({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message });
}

/** A 4xx that http-errors (body-parser, Express) marked as the client's, with its status. */
function clientStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/**
 * Express error middleware mounted after Nest's exception layer. Nest already answers body-parser
 * and routing errors through HttpExceptionFilter; this catches what escapes it (a filter that
 * throws, a failure while answering), which would otherwise reach Express's final handler: an
 * HTML page with the stack trace outside production.
 */
export function lastResortErrorHandler(): ErrorRequestHandler {
  const logger = new Logger('HttpServer');
  return (err: unknown, _req, res, _next) => {
    const status = clientStatus(err);
    if (status === undefined) logger.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (status === undefined) {
      res.status(500).type('application/json').send(errorBody(500, 'unexpected error'));
      return;
    }
    const exposed = err instanceof Error && (err as { expose?: unknown }).expose !== false;
    res.status(status).type('application/json').send(errorBody(status, exposed ? err.message : (STATUS_CODES[status] ?? 'Error')));
  };
}

/** Node's parser errors with the status Node itself answers (socketOnError in node:_http_server). */
const PARSER_ANSWERS: Record<string, [status: number, message: string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers are too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'chunk extensions are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request took too long to arrive'],
};

/**
 * Requests Node cannot parse (headers over 16 KiB, a malformed request line or header) never reach
 * Express: Node answers them itself with an empty body. These answers keep Node's status but carry
 * the documented JSON error body, so every 4xx looks the same to a client.
 */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex & { bytesWritten?: number }) => {
    if (err.code === 'ECONNRESET' || !socket.writable || (socket.bytesWritten ?? 0) > 0) {
      socket.destroy();
      return;
    }
    const [status, message] = PARSER_ANSWERS[err.code ?? ''] ?? [400, 'malformed HTTP request'];
    const body = errorBody(status, message);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
