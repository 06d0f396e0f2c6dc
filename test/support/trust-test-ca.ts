import * as tls from 'node:tls';
import { testTls } from './push';

/**
 * Makes this test process trust the local push servers' certificate, as NODE_EXTRA_CA_CERTS does
 * for a gateway process. It replaces what an earlier suite of the same Jest worker set rather than
 * adding to it: every test file makes its own certificate under the same subject name, and with
 * two of them trusted, OpenSSL may build the chain with the wrong one. (Node >= 22.15 has these
 * functions; @types/node here predates them.)
 */
export function trustTestCa(): void {
  const certs = tls as unknown as { getCACertificates(kind: string): string[]; setDefaultCACertificates(certs: string[]): void };
  certs.setDefaultCACertificates([...certs.getCACertificates('bundled'), ...certs.getCACertificates('extra'), testTls().cert]);
}
