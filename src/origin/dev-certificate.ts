import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Certificate {
  key: string;
  cert: string;
  /** SHA-256 of the DER certificate, for WebTransport serverCertificateHashes and for Chromium's SPKI allow-lists. */
  sha256: string;
}

/**
 * A self-signed development certificate for localhost, made once with openssl and kept in `dir`.
 * ECDSA P-256 and valid for 13 days: the profile that WebTransport's serverCertificateHashes accepts
 * (W3C WebTransport §6.3: at most 14 days), so the same certificate serves HTTPS, HTTP/2 and later HTTP/3.
 * It is renewed when less than a day of validity remains.
 */
export function developmentCertificate(dir: string): Certificate {
  const keyPath = join(dir, 'dev-key.pem');
  const certPath = join(dir, 'dev-cert.pem');
  if (!usable(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyPath, '-out', certPath, '-days', '13', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      ],
      { stdio: 'pipe' },
    );
  }
  const cert = readFileSync(certPath, 'utf8');
  return { key: readFileSync(keyPath, 'utf8'), cert, sha256: new X509Certificate(cert).fingerprint256 };
}

function usable(certPath: string): boolean {
  if (!existsSync(certPath)) return false;
  try {
    const x = new X509Certificate(readFileSync(certPath));
    return Date.parse(x.validTo) - Date.now() > 24 * 3600 * 1000;
  } catch {
    return false;
  }
}
