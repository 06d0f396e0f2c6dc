import { createHash } from 'node:crypto';

/** A stable stand-in for a collapse key a provider cannot carry as is: the same key always maps to the same token. */
function digest(collapseKey: string, length: number): string {
  return createHash('sha256').update(collapseKey).digest('base64url').slice(0, length);
}

/** Web Push `Topic` (RFC 8030 5.4): at most 32 characters of the base64url alphabet. */
export function webPushTopic(collapseKey: string): string {
  return /^[A-Za-z0-9_-]{1,32}$/.test(collapseKey) ? collapseKey : digest(collapseKey, 32);
}

/** `apns-collapse-id`: at most 64 bytes. */
export function apnsCollapseId(collapseKey: string): string {
  return Buffer.byteLength(collapseKey) <= 64 ? collapseKey : digest(collapseKey, 43);
}
