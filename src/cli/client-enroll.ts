// `kmipd client enroll NAME`: certificate + unencrypted PKCS#8 key + CA certificate, the bundle
// vCenter's "upload certificate and private key" flow and PyKMIP both take as is.
import { issueClientCertificate, writeClientBundle } from '../pki/index.js';
import { loadConfig, resolveIn } from '../server/config.js';

export async function enrollClient(o: { name: string; data: string; out: string; days: number; force: boolean }): Promise<void> {
  const cfg = loadConfig(o.data);
  if (!cfg.pki) throw new Error('this data folder uses an external PKI; issue client certificates from your own CA');
  const issued = await issueClientCertificate(resolveIn(o.data, cfg.pki.dir), o.name, { days: o.days });
  const paths = await writeClientBundle(o.out, issued, { force: o.force });
  console.log(`certificate: ${paths.certPath}`);
  console.log(`private key: ${paths.keyPath}`);
  console.log(`CA:          ${paths.caPath}`);
  console.log(`fingerprint: sha256 ${issued.fingerprintSha256}, valid until ${issued.notAfter.toISOString()}`);
}
