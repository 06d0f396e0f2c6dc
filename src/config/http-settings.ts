import { isIP } from 'node:net';
import { EnvReader } from './env-reader';

/** Which hops of X-Forwarded-For are proxies of ours: a count from the right, or their addresses. */
export type TrustProxy = { hops: number } | { proxies: readonly string[] };

/** How the HTTP listener faces the network: origins, timeouts, caps, the ops token. */
export interface HttpSettings {
  /** Browser origins allowed to open sockets and read REST responses; `*` for any. */
  corsOrigins: '*' | readonly string[];
  /** Guards /metrics, /docs, /docs-json and /asyncapi.json when set. */
  opsToken?: string;
  trustProxy: TrustProxy;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Concurrent TCP connections per process; 0 = no cap. */
  maxConnections: number;
  /** Socket handshakes per client address per second (burst twice that); 0 = no limit. */
  handshakesPerAddressPerSecond: number;
}

/** proxy-addr's (and so Express's) names for address ranges, accepted in TRUST_PROXY. */
export const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

export function readHttpSettings(r: EnvReader, production: boolean): HttpSettings {
  const headersTimeoutMs = r.int('HTTP_HEADERS_TIMEOUT_MS', 10_000, { min: 100, max: 600_000 });
  const requestTimeoutMs = r.int('HTTP_REQUEST_TIMEOUT_MS', 30_000, { min: 100, max: 3_600_000 });
  // Node refuses a server whose headers may take longer than the whole request.
  if (headersTimeoutMs > requestTimeoutMs) r.fail('HTTP_HEADERS_TIMEOUT_MS', `must be <= HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs})`);
  const opsToken = r.string('OPS_TOKEN');
  if (opsToken !== undefined && opsToken.length < 16) r.fail('OPS_TOKEN', 'must be at least 16 characters');
  return {
    corsOrigins: readOrigins(r, production),
    opsToken,
    trustProxy: readTrustProxy(r),
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: r.int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 5_000, { min: 100, max: 600_000 }),
    maxConnections: r.int('MAX_CONNECTIONS', 0, { min: 0, max: 10_000_000 }),
    handshakesPerAddressPerSecond: r.int('HANDSHAKES_PER_ADDRESS_PER_SECOND', 0, { min: 0, max: 1_000_000 }),
  };
}

/** `*`, or origins such as `https://app.example.com` (scheme, host, optional port) and `null`. */
function readOrigins(r: EnvReader, production: boolean): '*' | readonly string[] {
  const items = r.list('CORS_ORIGINS');
  if (!items) return production ? [] : '*';
  if (items.includes('*')) {
    if (items.length > 1) r.fail('CORS_ORIGINS', 'must be * alone or a list of origins');
    return '*';
  }
  return items.map((item) => {
    if (item === 'null') return item;
    const origin = originOf(item);
    if (!origin) r.fail('CORS_ORIGINS', `must list origins such as https://app.example.com (no path), got "${item}"`);
    return origin ?? item;
  });
}

function originOf(item: string): string | undefined {
  try {
    const url = new URL(item);
    const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
    // Browsers send the serialised origin (lower-case host, default port dropped): compare to that.
    return /^https?:$/.test(url.protocol) && bare ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

function readTrustProxy(r: EnvReader): TrustProxy {
  const raw = r.string('TRUST_PROXY')?.toLowerCase();
  if (raw === undefined || ['false', 'no', '0'].includes(raw)) return { hops: 0 };
  // `true` is the one proxy in front (not Express's "trust every hop", which lets a client choose
  // its own address by sending X-Forwarded-For).
  if (['true', 'yes'].includes(raw)) return { hops: 1 };
  if (/^\d+$/.test(raw)) return { hops: Math.min(Number(raw), 100) };
  const proxies = r.list('TRUST_PROXY') ?? [];
  for (const p of proxies) {
    const [address, bits, ...more] = p.split('/');
    const family = isIP(address ?? '');
    const validBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!PROXY_RANGE_NAMES.includes(p) && (family === 0 || !validBits || more.length > 0)) {
      r.fail('TRUST_PROXY', `must be true, false, a number of hops, or addresses/CIDRs (${PROXY_RANGE_NAMES.join(', ')} allowed), got "${p}"`);
    }
  }
  return { proxies };
}
