// TLS policy: mutual TLS (client certificates checked in client-trust.ts), 1.2 and 1.3 only,
// forward-secret AEAD suites for 1.2 by default.
import type { TlsOptions } from 'node:tls';

/** TLS 1.2 suites offered by default: ECDHE key exchange with AES-GCM. */
export const DEFAULT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
];

/** Older vCenter releases negotiate RSA key exchange with AES-CBC-SHA256; only with --tls-compat. */
export const COMPAT_TLS12_CIPHERS = ['AES256-SHA256', 'AES128-SHA256'];

const TLS13_CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'];

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly compatCiphers: boolean;
}

export function tlsServerOptions(m: TlsMaterial): TlsOptions {
  const ciphers = [...TLS13_CIPHERS, ...DEFAULT_TLS12_CIPHERS, ...(m.compatCiphers ? COMPAT_TLS12_CIPHERS : [])];
  return {
    cert: m.cert,
    key: m.key,
    // A client certificate is required, but judged by ClientTrust against the client registry right
    // after the handshake (pinned self-signed vCenter certificates, external CAs, revocation), not
    // by OpenSSL: no CA list is sent, so a client offers whatever certificate it has.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: ciphers.join(':'),
    honorCipherOrder: true,
    // Session resumption: short, parallel vCenter connections reuse sessions (tickets by default in Node).
    sessionTimeout: 300,
  };
}
