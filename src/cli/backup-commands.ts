// `kmipd backup` / `kmipd restore`. A backup is the store only: wrapped keys, attributes, clients,
// root key versions. It is useless without the HSM root key(s) that wrapped the keys — that is the
// point: whoever steals a backup holds nothing. Restore goes into a data folder whose HSM holds
// those root keys (the same HSM, or one the keys were replicated to by the HSM's own means).
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../server/config.js';
import { backupStore, inspectStoreFile, restoreStore, sampleWrappedKeys } from '../store/backup.js';
import { HsmError } from '../hsm/index.js';
import { addStoreOptions, openDataHsm, storeLocationOf, storeTarget, type StoreOpts, type StoreTarget } from './data-folder.js';
import type { StoreLocation } from '../store/store-location.js';
import { audited } from './operator-audit.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');

/**
 * The SQLite file behind a target. A PostgreSQL store is backed up and restored with PostgreSQL's
 * own tools, which do it better than kmipd could (consistent online dumps, point-in-time recovery).
 */
function sqliteFileOf(t: StoreTarget, what: 'backup' | 'restore'): string {
  const loc: StoreLocation = storeLocationOf(t, loadConfig(t.data));
  if (loc.kind === 'sqlite') return loc.path;
  throw new Error(
    what === 'backup'
      ? `the store is PostgreSQL (${loc.url}): back it up with PostgreSQL's tools, e.g. \`pg_dump --format=custom --file=kmipd.dump '${loc.url}'\` ` +
          '(a consistent copy while kmipd serves), or base backups with WAL archiving for point-in-time recovery. ' +
          'Like a kmipd backup, the dump holds wrapped keys only: it opens nothing without the HSM root key(s).'
      : `the store is PostgreSQL (${loc.url}): restore a pg_dump with \`pg_restore --dbname='${loc.url}' kmipd.dump\` into an empty database ` +
          '(stop the kmipd nodes first), then start them with --store (or store.url) pointing at it; their HSM must hold the root key(s) of the dump.',
  );
}

async function backup(o: { data: string; out: string } & StoreOpts): Promise<void> {
  const file = sqliteFileOf(storeTarget(o.data, o), 'backup');
  await audited(o.data, { operation: 'backup', detail: { out: o.out } }, async () => {
    const summary = await backupStore(file, o.out);
    console.log(`backup written to ${o.out}: ${summary.objects} object(s), ${summary.clients} client(s), root key(s) ${summary.rootKeyLabels.join(', ') || '-'}`);
    console.log('it opens nothing without those root keys in the HSM: keep the HSM (or its own backup) safe as well');
  });
}

async function restore(o: { data: string; from: string; force: boolean } & StoreOpts): Promise<void> {
  const cfg = loadConfig(o.data);
  const storePath = sqliteFileOf(storeTarget(o.data, o), 'restore');
  await audited(o.data, { operation: 'restore', detail: { from: o.from } }, async () => {
    const incoming = inspectStoreFile(o.from);
    const current = inspectStoreFile(storePath);
    if ((current.objects > 0 || current.clients > 0) && !o.force) {
      throw new Error(`${storePath} already holds ${current.objects} object(s) and ${current.clients} client(s); restore into a new data folder, or add --force`);
    }
    // Before touching anything: the keys in the backup must open with this folder's HSM.
    const hsm = await openDataHsm(o.data, cfg);
    try {
      const missing: string[] = [];
      for (const label of incoming.rootKeyLabels) if (!(await hsm.hasRootKey(label))) missing.push(label);
      // A label is not enough (a fresh token has its own "kmipd-crk-v1"): open one key per root
      // key, re-wrapping it (its value is zeroed at once) and discarding the result.
      for (const sample of missing.length === 0 ? sampleWrappedKeys(o.from) : []) {
        try {
          await hsm.rewrapKey(sample.id, sample, sample.rootKeyLabel);
        } catch (err) {
          if (!(err instanceof HsmError) || err.code !== 'UNWRAP_FAILED') throw err;
          missing.push(`${sample.rootKeyLabel} (a key with that label exists, but it is not the one that wrapped these keys)`);
        }
      }
      if (missing.length > 0) {
        throw new Error(
          `the HSM of this data folder (token ${cfg.hsm.tokenLabel}) lacks root key(s) ${missing.join(', ')}: the keys in this backup could not be opened. ` +
            'Point kmipd init at the HSM holding them (--pkcs11-module, --token-label, --root-key-label … --existing-root-key).',
        );
      }
    } finally {
      await hsm.close();
    }
    const summary = await restoreStore(o.from, storePath);
    console.log(`restored ${summary.objects} object(s) and ${summary.clients} client(s) into ${storePath}`);
    console.log('stop any kmipd serving this folder before a restore; start it afterwards');
  });
}

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description('consistent online copy of the store (SQLite backup API) while the server serves; useless without the HSM root key')
    .addOption(dataOption())
    .requiredOption('-o, --out <file>', 'backup file to create (never overwritten; mode 0600)')
    .action((o) => backup({ ...storeTarget(resolve(o.data), o), out: resolve(o.out) }));
  program
    .command('restore')
    .description('replace the store of a (new) data folder by a backup; its HSM must hold the root keys the backup needs')
    .addOption(dataOption())
    .requiredOption('--from <file>', 'backup file made by kmipd backup')
    .option('--force', 'replace a store that already holds keys or clients', false)
    .action((o) => restore({ ...storeTarget(resolve(o.data), o), from: resolve(o.from), force: o.force }));
  for (const name of ['backup', 'restore']) addStoreOptions(program.commands.find((c) => c.name() === name)!);
}
