import { isIP } from 'node:net';
import type { EnvReader } from '../config/env-reader';

/**
 * The push services' host names a Web Push subscription may name (WEBPUSH_ENDPOINT_HOSTS), so no
 * device can make the gateway call an arbitrary address. Default: the browsers' push services
 * today (Chrome, Edge's Chromium builds, Opera, Brave and Samsung Internet use FCM; Firefox
 * Mozilla's autopush; Safari Apple's web.push.apple.com; legacy Edge WNS).
 */
export const DEFAULT_WEBPUSH_ENDPOINT_HOSTS = ['fcm.googleapis.com', 'updates.push.services.mozilla.com', '*.push.apple.com', '*.notify.windows.com'];

/** One allowed entry: an exact host name or IP literal, or `*.suffix` (any name strictly below the suffix, never an IP). */
export type HostRule = { exact: string } | { suffix: string };

/** Parses the comma-separated list; a sentence saying what is wrong, for the config reader. */
export function parseEndpointHosts(entries: readonly string[]): HostRule[] | string {
  const rules: HostRule[] = [];
  for (const raw of entries) {
    const entry = normalise(raw);
    if (entry.startsWith('*.')) {
      const suffix = entry.slice(2);
      if (!isHostName(suffix) || !suffix.includes('.')) return `"${raw}": a *.suffix pattern needs a domain of two labels or more (as *.push.apple.com)`;
      rules.push({ suffix });
    } else if (isIP(unbracket(entry)) || isHostName(entry)) {
      rules.push({ exact: unbracket(entry) });
    } else {
      return `"${raw}" is not a host name, an IP address or a *.suffix pattern`;
    }
  }
  return rules;
}

/** Whether a URL's host name (as `new URL().hostname` gives it) is allowed. IP literals only when listed as such. */
export function hostAllowed(rules: readonly HostRule[], hostname: string): boolean {
  const host = unbracket(normalise(hostname));
  const ip = isIP(host) !== 0;
  return rules.some((r) => ('exact' in r ? r.exact === host : !ip && host.endsWith(`.${r.suffix}`)));
}

function normalise(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function isHostName(host: string): boolean {
  return host.length <= 253 && host.split('.').every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label));
}

/** WEBPUSH_ENDPOINT_HOSTS, validated at start (the browsers' push services by default). */
export function readWebPushEndpointHosts(r: EnvReader): HostRule[] {
  const rules = parseEndpointHosts(r.list('WEBPUSH_ENDPOINT_HOSTS') ?? DEFAULT_WEBPUSH_ENDPOINT_HOSTS);
  if (typeof rules === 'string') {
    r.fail('WEBPUSH_ENDPOINT_HOSTS', rules);
    return [];
  }
  return rules;
}
