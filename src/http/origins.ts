import type { IncomingMessage } from 'node:http';
import type { CorsOptions, CorsOptionsDelegate } from '@nestjs/common/interfaces/external/cors-options.interface';
import type { HttpSettings } from '../config/http-settings';

/**
 * CORS_ORIGINS, for socket handshakes and REST alike. A request without an Origin header is not a
 * browser's (a native app, a server) and is not affected; `null` (sandboxed frames, file: pages) is
 * an origin like any other, allowed only when listed or with `*`.
 */
export function originAllowed(origins: HttpSettings['corsOrigins'], origin: string | undefined): boolean {
  return origin === undefined || origins === '*' || origins.includes(origin);
}

/**
 * The Access-Control-Allow-Origin value for an allowed browser origin, or false for none. Never
 * with Access-Control-Allow-Credentials: devices and backends authenticate with a token, not
 * cookies, so no browser needs to send credentials along.
 */
export function corsOrigin(origins: HttpSettings['corsOrigins'], origin: string | undefined): string | false {
  if (origin === undefined || !originAllowed(origins, origin)) return false;
  return origins === '*' ? '*' : origin;
}

/**
 * REST CORS. /demo is left out: its pages are same-origin, and with the development default `*`
 * another site open in the developer's browser could otherwise read /demo/session (a device token
 * and perhaps the API key) from localhost.
 */
export function restCors(origins: HttpSettings['corsOrigins']): CorsOptionsDelegate<IncomingMessage> {
  return (req, callback) => {
    const demo = /^\/demo(\/|$|\?)/i.test(req.url ?? '');
    const options: CorsOptions = {
      origin: demo ? false : corsOrigin(origins, req.headers.origin),
      exposedHeaders: ['Retry-After'],
      maxAge: 600,
    };
    callback(null, options);
  };
}
