import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
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
 * It names localhost, 127.0.0.1, ::1 and `extraNames` (e.g. the host of --public-url), and is renewed
 * when less than a day of validity remains or when a name is missing.
 */
export function developmentCertificate(dir: string, extraNames: string[] = []): Certificate {
  const keyPath = join(dir, 'dev-key.pem');
  const certPath = join(dir, 'dev-cert.pem');
  const names = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
  for (const name of extraNames) {
    const bare = name.replace(/^\[|\]$/g, '');
    const entry = isIP(bare) ? `IP:${bare}` : `DNS:${bare}`;
    if (/^[A-Za-z0-9.:_-]+$/.test(bare.replace(/^IP:|^DNS:/, '')) && !names.includes(entry)) names.push(entry);
  }
  if (!usable(certPath, names) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '13',
        '-subj',
        '/CN=localhost',
        '-addext',
        `subjectAltName=${names.join(',')}`,
      ],
      { stdio: 'pipe' },
    );
  }
  const cert = readFileSync(certPath, 'utf8');
  return { key: readFileSync(keyPath, 'utf8'), cert, sha256: new X509Certificate(cert).fingerprint256 };
}

/** The operator's own certificate chain and key (PEM files). */
export function loadCertificate(certFile: string, keyFile: string): Certificate {
  const cert = readFileSync(certFile, 'utf8');
  const key = readFileSync(keyFile, 'utf8');
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (error) {
    throw new Error(
      `--tls-cert ${certFile} is not a PEM certificate (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (!x.checkPrivateKey(createPrivateKey(key)))
    throw new Error(`--tls-key ${keyFile} is not the key of --tls-cert ${certFile}`);
  return { key, cert, sha256: x.fingerprint256 };
}

/** W3C WebTransport §6.3 (serverCertificateHashes): at most 14 days of validity, and an ECDSA key. */
const MAX_HASHED_VALIDITY_MS = 14 * 24 * 3600 * 1000;

/**
 * The hashes a page may pass as WebTransport `serverCertificateHashes` to trust this certificate
 * without a CA (SHA-256 of the DER certificate, hex): one for a short-lived ECDSA certificate like
 * the development one, none for any other (a browser would refuse it; such a certificate needs a CA).
 */
export function certificateHashes(certificate: Certificate): { algorithm: 'sha-256'; value: string }[] {
  const x = new X509Certificate(certificate.cert);
  const validity = Date.parse(x.validTo) - Date.parse(x.validFrom);
  if (validity > MAX_HASHED_VALIDITY_MS || x.publicKey.asymmetricKeyType !== 'ec') return [];
  return [{ algorithm: 'sha-256', value: certificate.sha256.replaceAll(':', '').toLowerCase() }];
}

function usable(certPath: string, names: string[]): boolean {
  if (!existsSync(certPath)) return false;
  try {
    const x = new X509Certificate(readFileSync(certPath));
    // X509Certificate writes IPv6 addresses in full (0:0:…:1); the extra names are checked as given.
    const has = (x.subjectAltName ?? '').split(', ').map((n) => n.replace('IP Address:', 'IP:'));
    const missing = names.slice(3).some((n) => !has.includes(n));
    return !missing && Date.parse(x.validTo) - Date.now() > 24 * 3600 * 1000;
  } catch {
    return false;
  }
}
