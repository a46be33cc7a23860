// `kmipd ca export` (what vCenter trusts) and `kmipd ca rotate-server-cert` picked up by a running
// server without a restart: new connections get the new certificate, open ones keep working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Operation, ResultStatus } from '../../src/kmip/registry/generated.js';
import { kmipd, initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { auditRecords, eventually, V12 } from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let data: string;
let client: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  data = join(dir.path, 'data');
  client = await initAndEnroll(data, 'vc');
  server = await startServe(data);
});

afterAll(async () => {
  await server?.stop();
  dir?.remove();
});

async function servedCertificate(): Promise<{ cert: X509Certificate; fingerprint: string; k: KmipTestClient }> {
  const k = await KmipTestClient.connect(server.port, client);
  // Read once: on Node 20 a second getPeerX509Certificate() on the same socket returns undefined.
  const cert = k.socket.getPeerX509Certificate()!;
  return { cert, fingerprint: cert.fingerprint256, k };
}

describe('kmipd ca', () => {
  it('exports the CA certificate vCenter must trust', async () => {
    const { stdout } = await kmipd('ca', 'export', '--data', data);
    expect(stdout).toBe(readFileSync(join(data, 'pki', 'ca.crt'), 'utf8'));
    const { k, cert } = await servedCertificate();
    expect(cert.verify(new X509Certificate(stdout).publicKey)).toBe(true);
    k.close();
  });

  it('rotates the server certificate under a running server, without downtime', async () => {
    const first = await servedCertificate();
    const oldNames = new X509Certificate(readFileSync(join(data, 'pki', 'server.crt'))).subjectAltName;
    const pid = server.proc.pid;
    const { stdout } = await kmipd('ca', 'rotate-server-cert', '--data', data, '--days', '90');
    const fresh = new X509Certificate(readFileSync(join(data, 'pki', 'server.crt')));
    expect(stdout).toContain(fresh.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(fresh.subjectAltName).toBe(oldNames);
    expect(fresh.fingerprint256).not.toBe(first.fingerprint);
    const next = await eventually('the new certificate to be served', async () => {
      const c = await servedCertificate();
      if (c.fingerprint === fresh.fingerprint256) return c;
      c.k.close();
      return undefined;
    });
    expect((await next.k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
    // The connection opened before the rotation still works on the old certificate.
    expect((await first.k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
    first.k.close();
    next.k.close();
    expect(server.proc.pid).toBe(pid);
    expect(server.logs.some((l) => l.includes('server certificate reloaded'))).toBe(true);
    expect(auditRecords(data).some((r) => r['operation'] === 'ca rotate-server-cert' && r['result'] === 'Success')).toBe(true);
  });
});
