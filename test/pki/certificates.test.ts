import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { certificateFingerprintSha256, certificateSummary, initDevPki } from '../../src/pki/index.js';
import { ipToBytes, isValidDnsName } from '../../src/pki/names.js';
import { removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

let caPem: string;
let serverPem: string;

beforeAll(async () => {
  const { paths } = await initDevPki(await tempDir());
  caPem = await readFile(paths.caCert, 'utf8');
  serverPem = await readFile(paths.serverCert, 'utf8');
});

describe('certificateFingerprintSha256', () => {
  it('gives the same lowercase hex for PEM and DER', () => {
    const x = new X509Certificate(serverPem);
    const expected = x.fingerprint256.replace(/:/g, '').toLowerCase();
    expect(certificateFingerprintSha256(serverPem)).toBe(expected);
    expect(certificateFingerprintSha256(x.raw)).toBe(expected);
    expect(certificateFingerprintSha256(new Uint8Array(x.raw))).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects input that is not a certificate', () => {
    expect(() => certificateFingerprintSha256('not a cert')).toThrow();
    expect(() => certificateFingerprintSha256(new Uint8Array([1, 2, 3]))).toThrow();
  });
});

describe('certificateSummary', () => {
  it('summarises a server certificate', () => {
    const x = new X509Certificate(serverPem);
    const s = certificateSummary(serverPem);
    const caCN = /CN=(.*)$/m.exec(new X509Certificate(caPem).subject)?.[1];
    expect(s).toEqual({
      subjectCN: 'localhost',
      issuerCN: caCN,
      serialHex: x.serialNumber.toLowerCase(),
      notBefore: new Date(x.validFrom),
      notAfter: new Date(x.validTo),
      fingerprintSha256: certificateFingerprintSha256(serverPem),
    });
  });

  it('handles a certificate without CN, BMPString names and a high-bit serial', () => {
    const { publicKey, privateKey } = forge.pki.rsa.generateKeyPair({ bits: 512, e: 0x10001 });
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = '00ff01';
    cert.validity.notBefore = new Date('2030-01-02T03:04:05Z');
    cert.validity.notAfter = new Date('2051-06-07T08:09:10Z'); // GeneralizedTime
    cert.setSubject([{ shortName: 'O', value: 'no common name' }]);
    const bmp = forge.asn1.Type.BMPSTRING as unknown as forge.asn1.Class;
    cert.setIssuer([{ shortName: 'CN', value: '\0\u00e9\0t\0\u00e9', valueTagClass: bmp }]); // "été" as UTF-16BE
    cert.sign(privateKey, forge.md.sha256.create());
    const s = certificateSummary(forge.pki.certificateToPem(cert));
    expect(s.subjectCN).toBeUndefined();
    expect(s.issuerCN).toBe('été');
    expect(s.serialHex).toBe('ff01');
    expect(s.notBefore.toISOString()).toBe('2030-01-02T03:04:05.000Z');
    expect(s.notAfter.toISOString()).toBe('2051-06-07T08:09:10.000Z');
  });
});

describe('name helpers', () => {
  it('encodes IP addresses in network order', () => {
    expect([...ipToBytes('127.0.0.1')]).toEqual([127, 0, 0, 1]);
    expect([...ipToBytes('::1')]).toEqual([...Array<number>(15).fill(0), 1]);
    expect(Buffer.from(ipToBytes('2001:db8::8:800:200c:417a')).toString('hex')).toBe('20010db80000000000080800200c417a');
    expect(Buffer.from(ipToBytes('fe80::')).toString('hex')).toBe('fe800000000000000000000000000000');
    expect(Buffer.from(ipToBytes('::ffff:192.0.2.1')).toString('hex')).toBe('00000000000000000000ffffc0000201');
    expect(Buffer.from(ipToBytes('1:2:3:4:5:6:7:8')).toString('hex')).toBe('00010002000300040005000600070008');
    expect(() => ipToBytes('999.1.1.1')).toThrow();
    expect(() => ipToBytes('fe80::1%eth0')).toThrow();
    expect(() => ipToBytes('localhost')).toThrow();
  });

  it('validates DNS names', () => {
    for (const ok of ['localhost', 'kmip.example.com', '*.example.com', 'a-b.c', 'host.']) expect(isValidDnsName(ok)).toBe(true);
    for (const bad of ['', 'a_b', '-a', 'a-', 'a..b', '*', 'a.*.b', '127.0.0.1', 'a'.repeat(64), 'a b']) {
      expect(isValidDnsName(bad)).toBe(false);
    }
  });
});
