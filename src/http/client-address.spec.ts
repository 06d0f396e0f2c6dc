import type { IncomingMessage } from 'node:http';
import { addressKey, clientAddress, trustFn } from './client-address';

const request = (peer: string, forwardedFor?: string) =>
  ({ socket: { remoteAddress: peer }, headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} }) as unknown as IncomingMessage;

describe('client address', () => {
  it('is the TCP peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress(request('203.0.113.9', '1.2.3.4'), trustFn({ hops: 0 }))).toBe('203.0.113.9');
    expect(clientAddress(request('::ffff:203.0.113.9'), trustFn({ hops: 0 }))).toBe('203.0.113.9');
  });

  it('takes as many hops from the right as are trusted, so a client cannot choose its own', () => {
    // The client sent "X-Forwarded-For: 6.6.6.6"; the proxy appended the real address.
    expect(clientAddress(request('10.0.0.2', '6.6.6.6, 198.51.100.7'), trustFn({ hops: 1 }))).toBe('198.51.100.7');
    expect(clientAddress(request('10.0.0.2', '6.6.6.6, 198.51.100.7, 10.0.0.1'), trustFn({ hops: 2 }))).toBe('198.51.100.7');
    expect(clientAddress(request('10.0.0.2'), trustFn({ hops: 1 }))).toBe('10.0.0.2');
  });

  it('trusts listed proxies by address, subnet or range name', () => {
    const trust = trustFn({ proxies: ['loopback', '10.1.0.0/16', '2001:db8::5'] });
    expect(clientAddress(request('127.0.0.1', '198.51.100.7'), trust)).toBe('198.51.100.7');
    expect(clientAddress(request('::ffff:10.1.2.3', '6.6.6.6, 198.51.100.7, 127.0.0.1'), trust)).toBe('198.51.100.7');
    expect(clientAddress(request('2001:db8::5', '198.51.100.7'), trust)).toBe('198.51.100.7');
    expect(clientAddress(request('203.0.113.9', '198.51.100.7'), trust)).toBe('203.0.113.9');
  });

  it('counts IPv6 clients by their /64', () => {
    expect(addressKey('198.51.100.7')).toBe('198.51.100.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });
});
