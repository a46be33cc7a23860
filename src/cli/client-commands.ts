// `kmipd client …`: the client registry. Four ways for vCenter to trust kmipd's idea of a client:
//   enroll    kmipd issues certificate and key            (vCenter: "KMS certificate and private key")
//   sign-csr  kmipd signs vCenter's request               (vCenter: "New Certificate Signing Request")
//   trust     kmipd pins vCenter's own certificate        (vCenter: "vCenter certificate")
//   trust-ca  kmipd trusts vCenter's CA (+ a subject)     (vCenter: "vCenter Root CA certificate")
// Every change is recorded in the store, so every node sees it, and in the audit log.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import {
  assertValidClientName,
  certificateSummary,
  checkPinnedCertificate,
  inspectCertificate,
  issueClientCertificate,
  parseSubjectArgument,
  signClientCsr,
  writeClientBundle,
  type IssuedClient,
} from '../pki/index.js';
import { basicConstraints, hasKeyUsage } from '../pki/x509-inspect.js';
import { CLIENT_ROLES, assertValidTenant, type ClientRecord, type ClientRole, type NewCredential } from '../store/client-registry.js';
import { resolveIn, type KmipdConfig } from '../server/config.js';
import { addStoreOptions, storeTarget, withOperatorStore, type StoreOpts } from './data-folder.js';
import { audited } from './operator-audit.js';
import { positiveInt, printJson, table, when } from './format.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');
const tenantOption = () => new Option('--tenant <tenant>', 'tenant the client belongs to: it sees only this tenant\'s keys').default('default');
const roleOption = () =>
  new Option('--role <role>', 'reader: attributes and Locate; writer: + Get key material; manager: everything').choices(CLIENT_ROLES).default('manager');
const daysOption = () => new Option('--days <n>', 'validity in days').argParser(positiveInt('--days', 3650)).default(730);

interface Membership {
  readonly tenant: string;
  readonly role: ClientRole;
}

function devPkiDir(data: string, config: KmipdConfig): string {
  if (!config.pki) throw new Error('this data folder uses an external PKI: there is no kmipd CA to issue or sign with; use `client trust` or `client trust-ca`');
  return resolveIn(data, config.pki.dir);
}

function readCertificateFile(path: string): { pem: string; x509: X509Certificate } {
  const raw = readFileSync(path);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(raw);
  } catch {
    throw new Error(`${path} is not an X.509 certificate (PEM or DER)`);
  }
  return { pem: x509.toString(), x509 };
}

function credentialOf(kind: 'issued' | 'pinned', pem: string): NewCredential {
  const s = certificateSummary(pem);
  return { kind, fingerprint: s.fingerprintSha256, certificate: pem, serial: s.serialHex, notAfter: s.notAfter };
}

function issuedCredential(issued: Pick<IssuedClient, 'certPem'>): NewCredential {
  return credentialOf('issued', issued.certPem);
}

// ---------------------------------------------------------------- enroll

export async function enrollClient(o: { name: string; data: string; out: string; days: number; force: boolean } & Membership & StoreOpts): Promise<void> {
  assertValidClientName(o.name);
  assertValidTenant(o.tenant);
  let fingerprint: string | undefined;
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, () => ({ operation: 'client enroll', client: o.name, tenant: o.tenant, fingerprint, detail: { role: o.role } }), async () => {
      const existing = await s.clients.get(o.name);
      if (existing && !o.force) throw new Error(`client ${o.name} is already enrolled; use \`kmipd client renew ${o.name} --out DIR\` for a new certificate`);
      if (existing?.revokedAt) throw new Error(`client ${o.name} is revoked; enroll a new name`);
      const issued = await issueClientCertificate(devPkiDir(o.data, s.config), o.name, { days: o.days });
      fingerprint = issued.fingerprintSha256;
      const paths = await writeClientBundle(o.out, issued, { force: o.force });
      if (existing) await s.clients.addCredential(o.name, issuedCredential(issued), { revokePrevious: false });
      else await s.clients.addClient({ name: o.name, tenant: o.tenant, role: o.role }, issuedCredential(issued));
      console.log(`certificate: ${paths.certPath}`);
      console.log(`private key: ${paths.keyPath}`);
      console.log(`CA:          ${paths.caPath}`);
      console.log(`fingerprint: sha256 ${issued.fingerprintSha256}, valid until ${issued.notAfter.toISOString()}`);
      const m = existing ?? { tenant: o.tenant, role: o.role };
      console.log(`client:      ${o.name} (tenant ${m.tenant}, role ${m.role})`);
    }),
  );
}

// ---------------------------------------------------------------- sign-csr

async function signCsr(o: { name: string; data: string; csr: string; days: number; renew: boolean; revokePrevious: boolean } & Membership & StoreOpts): Promise<void> {
  assertValidClientName(o.name);
  assertValidTenant(o.tenant);
  let fingerprint: string | undefined;
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, () => ({ operation: o.renew ? 'client renew' : 'client sign-csr', client: o.name, tenant: o.tenant, fingerprint }), async () => {
      const existing = await s.clients.get(o.name);
      if (o.renew) requireRenewable(existing, o.name, 'issued');
      else if (existing) throw new Error(`client ${o.name} already exists; use \`kmipd client renew ${o.name} --csr FILE\``);
      const signed = await signClientCsr(devPkiDir(o.data, s.config), o.name, readFileSync(o.csr), { days: o.days });
      fingerprint = signed.fingerprintSha256;
      if (o.renew) await s.clients.addCredential(o.name, issuedCredential(signed), { revokePrevious: o.revokePrevious });
      else await s.clients.addClient({ name: o.name, tenant: o.tenant, role: o.role }, issuedCredential(signed));
      process.stdout.write(signed.certPem);
      console.error(`signed ${signed.keyDescription} key of request "${signed.requestedSubject}" as client ${o.name}`);
      console.error(`fingerprint: sha256 ${signed.fingerprintSha256}, valid until ${signed.notAfter.toISOString()}`);
      console.error('give vCenter the kmipd CA too: kmipd ca export');
    }),
  );
}

// ---------------------------------------------------------------- trust (pinned)

function pinnedCredential(path: string): NewCredential {
  const { pem, x509 } = readCertificateFile(path);
  checkPinnedCertificate(x509); // valid now, strong enough key, no broken signature
  return credentialOf('pinned', pem);
}

async function trustCertificate(o: { name: string; data: string; cert: string } & Membership & StoreOpts): Promise<void> {
  assertValidClientName(o.name);
  assertValidTenant(o.tenant);
  let fingerprint: string | undefined;
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, () => ({ operation: 'client trust', client: o.name, tenant: o.tenant, fingerprint, detail: { role: o.role } }), async () => {
      const cred = pinnedCredential(o.cert);
      fingerprint = cred.fingerprint;
      await s.clients.addClient({ name: o.name, tenant: o.tenant, role: o.role }, cred);
      console.log(`pinned certificate sha256 ${cred.fingerprint} (valid until ${when(cred.notAfter)}) as client ${o.name} (tenant ${o.tenant}, role ${o.role})`);
    }),
  );
}

// ---------------------------------------------------------------- trust-ca

async function trustCa(o: { name: string; data: string; cert: string; subject?: string | undefined } & Membership & StoreOpts): Promise<void> {
  assertValidClientName(o.name);
  assertValidTenant(o.tenant);
  let fingerprint: string | undefined;
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, () => ({ operation: 'client trust-ca', client: o.name, tenant: o.tenant, fingerprint, detail: { role: o.role, subject: o.subject } }), async () => {
      const { pem, x509 } = readCertificateFile(o.cert);
      const details = inspectCertificate(x509);
      if (!basicConstraints(details).ca) throw new Error(`${o.cert} is not a CA certificate (basic constraints); to trust this one certificate use \`kmipd client trust\``);
      if (hasKeyUsage(details, 'keyCertSign') === false) throw new Error(`${o.cert} may not sign certificates (key usage)`);
      checkPinnedCertificate(x509);
      const summary = certificateSummary(pem);
      fingerprint = summary.fingerprintSha256;
      const subject = o.subject === undefined ? undefined : parseSubjectArgument(o.subject);
      await s.clients.addClient(
        { name: o.name, tenant: o.tenant, role: o.role },
        { kind: 'ca', fingerprint, certificate: pem, subject, serial: summary.serialHex, notAfter: summary.notAfter },
      );
      console.log(
        `trusting certificates issued under CA sha256 ${fingerprint} (${summary.subjectCN ?? 'no CN'}, valid until ${when(summary.notAfter)})` +
          `${subject ? ` with subject ${subject}` : ' (any subject)'} as client ${o.name} (tenant ${o.tenant}, role ${o.role})`,
      );
    }),
  );
}

// ---------------------------------------------------------------- list

function clientStatus(c: ClientRecord, now = new Date()): string {
  if (c.revokedAt) return 'revoked';
  const active = c.credentials.filter((k) => !k.revokedAt);
  if (active.length === 0) return 'no certificate';
  return active.some((k) => k.notAfter > now) ? 'active' : 'expired';
}

async function listClients(o: { data: string; json: boolean; all: boolean } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), async (s) => {
    const clients = (await s.clients.list()).filter((c) => o.all || !c.revokedAt);
    if (o.json) {
      printJson(
        clients.map((c) => ({
          name: c.name,
          tenant: c.tenant,
          role: c.role,
          status: clientStatus(c),
          createdAt: c.createdAt,
          revokedAt: c.revokedAt ?? null,
          revocationReason: c.revocationReason ?? null,
          lastSeenAt: c.lastSeenAt ?? null,
          lastSeenFingerprint: c.lastSeenFingerprint ?? null,
          credentials: c.credentials
            .filter((k) => o.all || !k.revokedAt)
            .map((k) => ({
              trust: k.kind,
              fingerprint: k.fingerprint,
              serial: k.serial,
              subject: k.subject ?? null,
              expires: k.notAfter,
              addedAt: k.addedAt,
              revokedAt: k.revokedAt ?? null,
            })),
        })),
      );
      return;
    }
    const rows: string[][] = [];
    for (const c of clients) {
      const creds = c.credentials.filter((k) => o.all || !k.revokedAt);
      for (const k of creds.length > 0 ? creds : [undefined]) {
        rows.push([
          c.name,
          c.tenant,
          c.role,
          k?.kind ?? '-',
          k?.fingerprint ?? '-',
          when(k?.notAfter),
          when(c.lastSeenAt),
          k?.revokedAt && !c.revokedAt ? 'revoked' : clientStatus(c),
          k?.subject ?? '',
        ]);
      }
    }
    console.log(table(['NAME', 'TENANT', 'ROLE', 'TRUST', 'FINGERPRINT (SHA-256)', 'EXPIRES', 'LAST SEEN', 'STATUS', 'SUBJECT'], rows));
  });
}

// ---------------------------------------------------------------- revoke

async function revokeClient(o: { name: string; data: string; fingerprint?: string | undefined; reason?: string | undefined } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, { operation: 'client revoke', client: o.name, fingerprint: o.fingerprint, detail: { revocationReason: o.reason } }, async () => {
      if (o.fingerprint) {
        const fp = o.fingerprint.replace(/:/g, '').toLowerCase();
        await s.clients.revokeCredential(o.name, fp);
        console.log(`revoked certificate sha256 ${fp} of client ${o.name}`);
      } else {
        if (!(await s.clients.revokeClient(o.name, o.reason))) throw new Error(`client ${o.name} is already revoked`);
        console.log(`revoked client ${o.name}`);
      }
      console.log('new connections with it are refused at once; running servers close its open connections within a second');
    }),
  );
}

// ---------------------------------------------------------------- credentials

/** The password comes from an environment variable or standard input, never from argv (ps shows argv). */
async function readPassword(envName: string | undefined): Promise<string> {
  if (envName) {
    const v = process.env[envName];
    if (!v) throw new Error(`environment variable ${envName} is not set`);
    return v;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function setPassword(o: { name: string; data: string; username: string; passwordEnv?: string | undefined } & StoreOpts): Promise<void> {
  const password = await readPassword(o.passwordEnv);
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, { operation: 'client set-password', client: o.name }, async () => {
      const c = await s.clients.get(o.name);
      if (!c || c.revokedAt) throw new Error(`no active client named ${o.name}`);
      await s.passwords.set(o.name, o.username, password);
      console.log(`client ${o.name}: requests that carry a Username/Password credential must now present ${JSON.stringify(o.username)} and this password`);
    }),
  );
}

async function clearPassword(o: { name: string; data: string } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, { operation: 'client clear-password', client: o.name }, async () => {
      if (!(await s.passwords.clear(o.name))) throw new Error(`client ${o.name} has no password`);
      console.log(`client ${o.name}: credentials in requests are no longer checked`);
    }),
  );
}

// ---------------------------------------------------------------- renew

function requireRenewable(c: ClientRecord | undefined, name: string, kind: 'issued' | 'pinned'): ClientRecord {
  if (!c) throw new Error(`no client named ${name}`);
  if (c.revokedAt) throw new Error(`client ${name} is revoked`);
  const kinds = new Set(c.credentials.map((k) => k.kind));
  if (kinds.has('ca')) throw new Error(`client ${name} is trusted through its CA: its certificates are renewed by that CA, nothing to do here`);
  if (!kinds.has(kind)) {
    throw new Error(
      kind === 'issued'
        ? `client ${name} uses a pinned certificate: renew it with --cert NEW.crt`
        : `client ${name} uses a certificate issued by kmipd: renew it with --out DIR or --csr FILE`,
    );
  }
  return c;
}

async function renewClient(o: {
  name: string;
  data: string;
  out?: string | undefined;
  csr?: string | undefined;
  cert?: string | undefined;
  days: number;
  force: boolean;
  revokePrevious: boolean;
} & StoreOpts): Promise<void> {
  const given = [o.out, o.csr, o.cert].filter((v) => v !== undefined).length;
  if (given !== 1) throw new Error('give exactly one of --out DIR (new key and certificate), --csr FILE (sign a request) or --cert FILE (pin a new certificate)');
  if (o.csr) {
    const c = await withOperatorStore(storeTarget(o.data, o), (s) => s.clients.get(o.name));
    return signCsr({ ...storeTarget(o.data, o), name: o.name, csr: o.csr, days: o.days, renew: true, revokePrevious: o.revokePrevious, tenant: c?.tenant ?? 'default', role: c?.role ?? 'manager' });
  }
  let fingerprint: string | undefined;
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, () => ({ operation: 'client renew', client: o.name, fingerprint, detail: { revokePrevious: o.revokePrevious } }), async () => {
      if (o.cert) {
        requireRenewable(await s.clients.get(o.name), o.name, 'pinned');
        const cred = pinnedCredential(o.cert);
        fingerprint = cred.fingerprint;
        await s.clients.addCredential(o.name, cred, { revokePrevious: o.revokePrevious });
        console.log(`pinned certificate sha256 ${cred.fingerprint} (valid until ${when(cred.notAfter)}) for client ${o.name}`);
      } else {
        requireRenewable(await s.clients.get(o.name), o.name, 'issued');
        const issued = await issueClientCertificate(devPkiDir(o.data, s.config), o.name, { days: o.days });
        fingerprint = issued.fingerprintSha256;
        const paths = await writeClientBundle(o.out!, issued, { force: o.force });
        await s.clients.addCredential(o.name, issuedCredential(issued), { revokePrevious: o.revokePrevious });
        console.log(`certificate: ${paths.certPath}`);
        console.log(`private key: ${paths.keyPath}`);
        console.log(`CA:          ${paths.caPath}`);
        console.log(`fingerprint: sha256 ${issued.fingerprintSha256}, valid until ${issued.notAfter.toISOString()}`);
      }
      console.log(
        o.revokePrevious
          ? 'the previous certificate(s) of this client are revoked'
          : `the previous certificate stays valid until it expires; once every node uses the new one: kmipd client revoke ${o.name} --fingerprint OLD`,
      );
    }),
  );
}

// ---------------------------------------------------------------- registration

export function registerClientCommands(client: Command): void {
  client
    .command('sign-csr <name>')
    .description("sign a client's certificate signing request (vCenter: New Certificate Signing Request); prints the certificate (PEM)")
    .addOption(dataOption())
    .requiredOption('--csr <file>', 'the request (PEM or DER): RSA 2048+ or EC P-256/P-384, signed with SHA-256 or better')
    .addOption(daysOption())
    .addOption(tenantOption())
    .addOption(roleOption())
    .action((name: string, o) => signCsr({ name, ...storeTarget(resolve(o.data), o), csr: o.csr, days: o.days, renew: false, revokePrevious: false, tenant: o.tenant, role: o.role }));

  client
    .command('trust <name>')
    .description("pin a client's own certificate by SHA-256 fingerprint (vCenter: vCenter certificate; self-signed and no clientAuth usage are fine)")
    .addOption(dataOption())
    .requiredOption('--cert <file>', "the client's certificate (PEM or DER)")
    .addOption(tenantOption())
    .addOption(roleOption())
    .action((name: string, o) => trustCertificate({ name, ...storeTarget(resolve(o.data), o), cert: o.cert, tenant: o.tenant, role: o.role }));

  client
    .command('trust-ca <name>')
    .description('accept client certificates issued under a CA (vCenter: vCenter Root CA certificate), optionally only for one subject')
    .addOption(dataOption())
    .requiredOption('--cert <file>', 'the CA certificate (PEM or DER)')
    .option('--subject <dn>', 'accept only this subject, e.g. "CN=vcenter01.example.com,O=Example" (attribute order does not matter)')
    .addOption(tenantOption())
    .addOption(roleOption())
    .action((name: string, o) => trustCa({ name, ...storeTarget(resolve(o.data), o), cert: o.cert, subject: o.subject, tenant: o.tenant, role: o.role }));

  client
    .command('list')
    .description('enrolled clients: name, tenant, role, trust, certificate fingerprint, expiry, last seen, status')
    .addOption(dataOption())
    .option('--json', 'JSON instead of a table', false)
    .option('--all', 'include revoked clients and certificates', false)
    .action((o) => listClients({ ...storeTarget(resolve(o.data), o), json: o.json, all: o.all }));

  client
    .command('revoke <name>')
    .description('revoke a client (or one of its certificates): refused at the next handshake, open connections closed, no restart')
    .addOption(dataOption())
    .option('--fingerprint <sha256>', 'revoke only this certificate of the client (e.g. the one a renewal replaced)')
    .option('--reason <text>', 'why (kept in the registry and the audit log)')
    .action((name: string, o) => revokeClient({ name, ...storeTarget(resolve(o.data), o), fingerprint: o.fingerprint, reason: o.reason }));

  client
    .command('set-password <name>')
    .description("check the Username/Password Credential a client sends (vCenter offers one); the password is read from stdin or --password-env")
    .addOption(dataOption())
    .requiredOption('--username <user>', 'the username the client sends')
    .option('--password-env <var>', 'read the password from this environment variable instead of stdin')
    .action((name: string, o) => setPassword({ name, ...storeTarget(resolve(o.data), o), username: o.username, passwordEnv: o.passwordEnv }));

  client
    .command('clear-password <name>')
    .description('stop checking credentials for a client (its certificate alone identifies it)')
    .addOption(dataOption())
    .action((name: string, o) => clearPassword({ name, ...storeTarget(resolve(o.data), o) }));

  client
    .command('renew <name>')
    .description('a new certificate for a client: --out (new key from kmipd), --csr (sign a request) or --cert (pin a new certificate)')
    .addOption(dataOption())
    .option('-o, --out <dir>', 'write NAME.crt, NAME.key and ca.crt here (client enrolled with `client enroll`)')
    .option('--csr <file>', 'sign this request (client enrolled with `client sign-csr`, or switching to it)')
    .option('--cert <file>', 'pin this certificate instead (client added with `client trust`)')
    .addOption(daysOption())
    .option('--force', 'overwrite an existing NAME.key in --out', false)
    .option('--revoke-previous', 'revoke the previous certificate(s) at once instead of letting them run out', false)
    .action((name: string, o) =>
      renewClient({ name, ...storeTarget(resolve(o.data), o), out: o.out && resolve(o.out), csr: o.csr, cert: o.cert, days: o.days, force: o.force, revokePrevious: o.revokePrevious }),
    );

  // Every client command reads or writes the registry: each takes --store (enroll too, registered in main.ts).
  for (const sub of client.commands) addStoreOptions(sub);
}
