import type { ServerResponse } from 'node:http';
import { sendJson } from './send-json';

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * The one 503 the gateway answers: the documented error shape plus Retry-After, with Node's own
 * response methods (sendJson): shedding answers requests the front path took, which have no
 * Express methods.
 */
export function sendUnavailable(res: ServerResponse, message: string, extraHeaders: Record<string, string> = {}): void {
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
  sendJson(res, 503, { statusCode: 503, error: 'Service Unavailable', message });
}
