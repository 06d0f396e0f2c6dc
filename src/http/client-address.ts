import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { TrustProxy } from '../config/http-settings';

/** Decides whether the address `i` hops from the gateway (0 = the TCP peer) is a proxy of ours. */
export type TrustFn = (address: string, hop: number) => boolean;

const RANGES: Record<string, [string, number, 'ipv4' | 'ipv6'][]> = {
  loopback: [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']],
  linklocal: [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']],
  uniquelocal: [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']],
};

/**
 * The trust rule for TRUST_PROXY, in the shape Express's `trust proxy` takes, so REST (req.ip) and
 * socket handshakes agree on who the client is.
 */
export function trustFn(trust: TrustProxy): TrustFn {
  if ('hops' in trust) return (_address, hop) => hop < trust.hops;
  const list = new BlockList();
  for (const entry of trust.proxies) {
    for (const [network, bits, family] of RANGES[entry] ?? []) list.addSubnet(network, bits, family);
    if (RANGES[entry]) continue;
    const [address = '', bits] = entry.split('/');
    const family = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return (address) => {
    const plain = unmapped(address);
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  };
}

/**
 * The client's address as proxy-addr (Express) computes it: walk from the TCP peer back through
 * X-Forwarded-For while the hop is trusted; the first untrusted one is the client.
 */
export function clientAddress(req: IncomingMessage, trust: TrustFn): string {
  const forwarded = req.headers['x-forwarded-for'];
  const chain = [req.socket.remoteAddress ?? ''];
  if (forwarded) chain.push(...String(forwarded).split(',').map((a) => a.trim()).filter(Boolean).reverse());
  let i = 0;
  while (i < chain.length - 1 && trust(chain[i] ?? '', i)) i++;
  return unmapped(chain[i] ?? '');
}

/** `::ffff:10.1.2.3` (an IPv4 client on a dual-stack socket) is 10.1.2.3. */
function unmapped(address: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  return v4 && isIPv4(v4) ? v4 : address;
}

/**
 * What per-address limits count: an IPv4 address, or an IPv6 /64 (one subscriber usually holds a
 * whole /64, so counting single IPv6 addresses would let one client spread over 2^64 of them).
 */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
