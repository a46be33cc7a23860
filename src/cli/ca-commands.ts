// `kmipd ca …`: the kmipd CA as vCenter sees it, and the server certificate it signs.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { loadConfig, resolveIn } from '../server/config.js';
import { pkiPaths, rotateServerCertificate } from '../pki/index.js';
import { audited } from './operator-audit.js';
import { positiveInt, when } from './format.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');
const collect = (v: string, prev: string[] = []) => [...prev, v];

function pkiDir(data: string): string {
  const cfg = loadConfig(data);
  if (!cfg.pki) {
    throw new Error(
      `this data folder uses its own server certificate (${cfg.tls.cert}): give vCenter the CA that issued it, and replace ` +
        'tls.cert / tls.key in place to rotate it (a running server picks the new pair up)',
    );
  }
  return resolveIn(data, cfg.pki.dir);
}

function exportCa(o: { data: string }): void {
  process.stdout.write(readFileSync(pkiPaths(pkiDir(o.data)).caCert, 'utf8'));
}

async function rotateServerCert(o: { data: string; days: number; serverName?: string[]; serverIp?: string[] }): Promise<void> {
  const dir = pkiDir(o.data);
  await audited(o.data, { operation: 'ca rotate-server-cert' }, async () => {
    const r = await rotateServerCertificate(dir, {
      days: o.days,
      ...(o.serverName ? { serverDnsNames: o.serverName } : {}),
      ...(o.serverIp ? { serverIps: o.serverIp } : {}),
    });
    console.log(`new server certificate sha256 ${r.fingerprintSha256}, valid until ${when(r.notAfter)}, for ${[...r.dnsNames, ...r.ips].join(', ')}`);
    console.log('running servers serve it to new connections within a few seconds; open connections keep theirs');
  });
}

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the kmipd CA (what vCenter trusts) and the server certificate');
  ca.command('export')
    .description('print the kmipd CA certificate (PEM), to paste into vCenter as the KMS certificate to trust')
    .addOption(dataOption())
    .action((o) => exportCa({ data: resolve(o.data) }));
  ca.command('rotate-server-cert')
    .description('issue a new server key and certificate from the kmipd CA (same names unless given); picked up by a running server')
    .addOption(dataOption())
    .addOption(new Option('--days <n>', 'validity in days').argParser(positiveInt('--days', 825)).default(730))
    .option('--server-name <dns>', 'DNS name (repeatable; replaces the current names)', collect)
    .option('--server-ip <ip>', 'IP address (repeatable; replaces the current addresses)', collect)
    .action((o) => rotateServerCert({ data: resolve(o.data), days: o.days, serverName: o.serverName, serverIp: o.serverIp }));
}
