import type { ServerResponse } from 'node:http';

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * The one 503 the gateway answers: the documented error shape plus Retry-After. Written with
 * Node's own response methods, so that it needs no Express on the response: shedding answers
 * requests the front path (src/http/fast-publish.ts) took, which have none.
 */
export function sendUnavailable(res: ServerResponse, message: string, extraHeaders: Record<string, string> = {}): void {
  const body = JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message });
  res.statusCode = 503;
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
