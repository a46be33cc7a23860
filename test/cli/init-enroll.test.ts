// `kmipd init` and `kmipd client enroll` as an operator runs them: the real CLI, a temp folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { kmipd, tempDir } from '../helpers/kmipd.js';

let dir: ReturnType<typeof tempDir>;

beforeAll(() => {
  dir = tempDir();
});
afterAll(() => dir?.remove());

function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p.slice(root.length), readFileSync(p).toString('base64'));
    }
  };
  walk(root);
  return out;
}

describe('kmipd init', () => {
  it('creates the token, root key, store and dev PKI with private files readable by the owner only', async () => {
    const { stdout } = await kmipd('init', '--data', dir.path);
    expect(stdout).toContain('generated root key kmipd-crk-v1');
    const mode = (p: string) => statSync(join(dir.path, p)).mode & 0o777;
    expect(mode('hsm/pins.json')).toBe(0o600);
    expect(mode('pki/ca.key')).toBe(0o600);
    expect(mode('pki/server.key')).toBe(0o600);
    expect(mode('kmipd.json')).toBe(0o600);
    expect(mode('kmipd.db')).toBe(0o600);
    expect(mode('.')).toBe(0o700);
    const cfg = JSON.parse(readFileSync(join(dir.path, 'kmipd.json'), 'utf8'));
    expect(cfg.listen).toBe('127.0.0.1:5696');
    expect(JSON.stringify(cfg)).not.toMatch(/"pin":\s*"/); // a PIN source, never a PIN
    const server = new X509Certificate(readFileSync(join(dir.path, 'pki/server.crt')));
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
  });

  it('is idempotent: a second run changes nothing', async () => {
    const before = snapshot(dir.path);
    const { stdout } = await kmipd('init', '--data', dir.path);
    expect(stdout).toContain('root key kmipd-crk-v1 present');
    const after = snapshot(dir.path);
    // SQLite may rewrite its own files on open; everything else is byte-identical.
    for (const [p, content] of before) if (!p.startsWith('/kmipd.db') && !p.startsWith('/hsm/tokens')) expect(after.get(p), p).toBe(content);
    expect([...after.keys()].filter((p) => !p.startsWith('/kmipd.db')).sort()).toEqual([...before.keys()].filter((p) => !p.startsWith('/kmipd.db')).sort());
  });

  it('refuses a production HSM configuration without a PIN source', async () => {
    const other = tempDir();
    await expect(kmipd('init', '--data', other.path, '--pkcs11-module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', 'x')).rejects.toThrow(/--pin-file or --pin-env/);
    other.remove();
  });
});

describe('kmipd client enroll', () => {
  it('writes NAME.crt, NAME.key (unencrypted PKCS#8) and ca.crt signed by the kmipd CA', async () => {
    const out = join(dir.path, 'out');
    await kmipd('client', 'enroll', 'vcenter01', '--data', dir.path, '--out', out);
    const cert = new X509Certificate(readFileSync(join(out, 'vcenter01.crt')));
    const ca = new X509Certificate(readFileSync(join(out, 'ca.crt')));
    const keyPem = readFileSync(join(out, 'vcenter01.key'), 'utf8');
    expect(keyPem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toContain('CN=vcenter01');
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    expect(statSync(join(out, 'vcenter01.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).toBe(readFileSync(join(dir.path, 'pki/ca.crt'), 'utf8'));
  });

  it('refuses to overwrite an existing key without --force', async () => {
    const out = join(dir.path, 'out');
    await expect(kmipd('client', 'enroll', 'vcenter01', '--data', dir.path, '--out', out)).rejects.toThrow();
    await kmipd('client', 'enroll', 'vcenter01', '--data', dir.path, '--out', out, '--force');
  });

  it('has --help on every command', async () => {
    for (const args of [[], ['init'], ['serve'], ['client'], ['client', 'enroll']]) {
      const { stdout } = await kmipd(...args, '--help');
      expect(stdout).toContain('Usage: kmipd');
    }
  });
});
