import { parseRetryAfter } from '../../common/retry-after';
import { AttemptResult } from './push-provider';

/** The common HTTP reading: 2xx sent, 404/410 gone, 429/5xx retry (with Retry-After), other 4xx rejected. */
export function classifyHttpStatus(
  status: number,
  headers: Record<string, string | string[] | undefined> | undefined,
  detail: string,
  now: number = Date.now(),
): AttemptResult {
  if (status >= 200 && status < 300) return { kind: 'sent' };
  if (status === 404 || status === 410) return { kind: 'gone', detail };
  if (status === 429 || status >= 500 || status === 408) {
    return { kind: 'retry', detail, retryAfterMs: parseRetryAfter(headers?.['retry-after'], now) };
  }
  return { kind: 'rejected', detail };
}

/**
 * A failure below HTTP worth retrying (refused, reset, timed out, a TLS handshake that failed: every
 * error Node gives a `code`), or undefined for anything else, such as a payload that cannot be
 * encrypted for the subscription's keys, which no retry can mend.
 */
export function networkFailure(error: unknown): AttemptResult | undefined {
  const code = errorCode(error);
  const message = errorMessage(error);
  if (code !== undefined || /socket timeout|timed out|socket hang up/i.test(message)) {
    return { kind: 'retry', detail: `${code ?? 'network'}: ${message}` };
  }
  return undefined;
}

// Duck-typed rather than `instanceof Error`: errors from Node's core can come from another realm (Jest's VM).
export function errorMessage(error: unknown): string {
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  return String(error);
}

function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
