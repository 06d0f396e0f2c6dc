import helmet from 'helmet';

/**
 * Security headers (helmet's defaults: CSP, X-Content-Type-Options, frame and referrer policies,
 * HSTS for HTTPS clients, no X-Powered-By). The CSP allows only same-origin scripts: /demo and
 * Swagger UI load theirs from files and use inline styles only, which the default allows; the
 * demo's Socket.IO connection is same-origin (`connect-src` falls back to 'self', which covers
 * ws: and wss: to this host). `upgrade-insecure-requests` is dropped: the gateway is often
 * reached over plain HTTP (loopback, behind a TLS-terminating balancer), where it would send the
 * browser to an https:// that does not exist.
 */
export function securityHeaders(): ReturnType<typeof helmet> {
  return helmet({
    contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } },
  });
}
