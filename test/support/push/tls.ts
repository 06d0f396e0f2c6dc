import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed certificate for 127.0.0.1 and localhost, shared by the local push servers. */
export interface TestTls {
  key: string;
  cert: string;
  /** The certificate's file: give it to gateway processes as NODE_EXTRA_CA_CERTS. */
  caFile: string;
}

let cached: TestTls | undefined;

/** Made once per test process with the `openssl` CLI (P-256, valid two days). */
export function testTls(): TestTls {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'push-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const config = join(dir, 'openssl.cnf');
  writeFileSync(
    config,
    [
      '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no',
      '[dn]', 'CN = push-test-local',
      '[ext]', 'subjectAltName = IP:127.0.0.1, DNS:localhost', 'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, digitalSignature, keyCertSign', 'extendedKeyUsage = serverAuth',
    ].join('\n'),
  );
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-config', config,
  ], { stdio: 'pipe' });
  cached = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), caFile: certFile };
  return cached;
}
