import type { Response } from 'express';

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 1;

/** The one 503 the gateway answers: the documented error shape plus Retry-After. */
export function sendUnavailable(res: Response, message: string, extraHeaders: Record<string, string> = {}): void {
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
  res.status(503).json({ statusCode: 503, error: 'Service Unavailable', message });
}
