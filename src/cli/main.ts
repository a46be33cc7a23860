// The kmipd command line: one subcommand per operator task, each with --help.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { initDataDir } from './init.js';
import { serve } from './serve.js';
import { enrollClient, registerClientCommands } from './client-commands.js';
import { registerOperatorCommands } from './operator-commands.js';
import { CLIENT_ROLES } from '../store/client-registry.js';
import { LIMIT_SETTINGS, MAX_SERVE_PROCESSES, DEFAULT_LISTEN, loadConfig, type Limits } from '../server/config.js';
import { configReferenceMarkdown } from '../server/config-reference.js';
import { DEFAULT_ROOT_KEY_LABEL } from '../hsm/index.js';
import { addStoreOptions } from './data-folder.js';
import { errorLine, positiveInt as rangedInt } from './format.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
const positiveInt = (v: string): number => {
  if (!/^[1-9][0-9]*$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError('expected a positive integer');
  return Number(v);
};
const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');

export function buildProgram(): Command {
  const program = new Command('kmipd')
    .description('KMIP server for hypervisor storage encryption: HSM-wrapped keys over mutual TLS')
    .showHelpAfterError();

  program
    .command('init')
    .description('create or complete a data folder: HSM token and root key, SQLite store, dev PKI (idempotent)')
    .addOption(dataOption())
    .option('--pkcs11-module <path>', 'use this PKCS#11 module instead of an embedded SoftHSM token')
    .option('--token-label <label>', 'token label (default for the embedded SoftHSM token: kmipd)')
    .option('--pin-file <path>', 'read the token user PIN from this file')
    .option('--pin-env <name>', 'read the token user PIN from this environment variable')
    .option('--root-key-label <label>', 'CKA_LABEL of the customer root key', DEFAULT_ROOT_KEY_LABEL)
    .option('--existing-root-key', 'the root key must already exist in the HSM; never generate one', false)
    .option('--server-name <dns>', 'DNS name for the server certificate (repeatable)', collect)
    .option('--server-ip <ip>', 'IP address for the server certificate (repeatable)', collect)
    .option('--tls-cert <path>', 'use your own server certificate (PEM) instead of the dev PKI')
    .option('--tls-key <path>', 'private key of --tls-cert (PEM)')
    .option('--client-ca <path>', 'CA certificate(s) whose client certificates are accepted (PEM)')
    .option('--listen <host:port>', 'address to serve on', DEFAULT_LISTEN)
    .action(async (o) => {
      const data = resolve(o.data);
      const report = await initDataDir({ ...o, data });
      const said = (b: boolean, yes: string, no: string) => (b ? yes : no);
      console.log(said(report.configCreated, `created ${data}/kmipd.json`, `${data}/kmipd.json already present`));
      console.log(said(report.rootKeyCreated, `generated root key ${report.config.hsm.rootKeyLabel} in the HSM`, `root key ${report.config.hsm.rootKeyLabel} present in the HSM`));
      if (report.config.pki) console.log(said(report.pkiCreated, 'created the dev PKI (CA and server certificate)', 'dev PKI present'));
      console.log(`store: ${report.store}`);
      console.log(`next: kmipd client enroll NAME --data ${o.data} --out ./client && kmipd serve --data ${o.data}`);
    });

  addStoreOptions(program.commands.find((c) => c.name() === 'init')!);

  const serveCmd = program
    .command('serve')
    .description('serve KMIP over mutual TLS until SIGTERM/SIGINT')
    .addOption(dataOption())
    .option('--listen <host:port>', `address to serve on (default: from kmipd.json, ${DEFAULT_LISTEN})`)
    .option('--admin-listen <host:port>', 'also serve /healthz, /readyz and /metrics over plain HTTP here (default: from kmipd.json, off)')
    .option('--tls-compat', 'also offer the RSA key-exchange AES-CBC-SHA256 suites older vCenters negotiate', false)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .addOption(
      new Option('--processes <n>', 'serve processes sharing the listener, at most one per core (default: from kmipd.json, 1)').argParser(
        rangedInt('--processes', MAX_SERVE_PROCESSES),
      ),
    );
  // One flag per limit, named and documented by the configuration schema.
  const limitFlags = Object.entries(LIMIT_SETTINGS).map(([name, setting]) => {
    const option = new Option(setting.serveFlag, `${setting.description} (default ${String(setting.default)})`).argParser(positiveInt);
    serveCmd.addOption(option);
    return [name, option.attributeName()] as const;
  });
  serveCmd.action(async (o) =>
    serve({
      data: resolve(o.data),
      listen: o.listen,
      adminListen: o.adminListen,
      compatCiphers: o.tlsCompat,
      logLevel: o.logLevel,
      processes: o.processes,
      limits: Object.fromEntries(limitFlags.map(([name, attr]) => [name, o[attr] as number | undefined])) as Partial<Limits>,
      store: { url: o.store, passwordEnv: o.storePasswordEnv },
    }),
  );
  addStoreOptions(serveCmd);

  const config = program.command('config').description('the configuration file kmipd.json');
  config
    .command('check')
    .description("validate the data folder's kmipd.json and print it with every default filled in")
    .addOption(dataOption())
    .action((o) => {
      // Unset optional settings show as null rather than vanishing.
      console.log(JSON.stringify(loadConfig(resolve(o.data)), (_k, v: unknown) => (v === undefined ? null : v), 2));
    });
  config
    .command('reference')
    .description('print the reference of every kmipd.json setting (Markdown)')
    .action(() => {
      process.stdout.write(configReferenceMarkdown());
    });

  const client = program.command('client').description('manage KMIP clients');
  client
    .command('enroll <name>')
    .description('issue a client certificate and key (PKCS#8 PEM) signed by the kmipd CA, with ca.crt, into --out')
    .addOption(dataOption())
    .requiredOption('-o, --out <dir>', 'folder to write NAME.crt, NAME.key and ca.crt into')
    .option('--days <n>', 'validity in days', (v) => Number.parseInt(v, 10), 730)
    .option('--force', 'overwrite an existing NAME.key (for an enrolled NAME: issue it another certificate)', false)
    .option('--tenant <tenant>', "tenant the client belongs to: it sees only this tenant's keys", 'default')
    .addOption(new Option('--role <role>', 'reader: attributes and Locate; writer: + Get key material; manager: everything').choices(CLIENT_ROLES).default('manager'))
    .action(async (name: string, o) =>
      enrollClient({ name, data: resolve(o.data), store: o.store, storePasswordEnv: o.storePasswordEnv, out: resolve(o.out), days: o.days, force: o.force, tenant: o.tenant, role: o.role }),
    );
  registerClientCommands(client);
  registerOperatorCommands(program);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    console.error(errorLine(err));
    process.exitCode = 1;
  }
}
