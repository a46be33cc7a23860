// `kmipd keys …`: the operator's view of managed keys, straight on the store (the server may run).
// revoke and destroy apply the very same Revoke and Destroy handlers a KMIP client would reach, so
// states, dates and crypto-erase are identical; revoke also places an operator hold: the key is
// not served to any client again (see src/server/operator-holds.ts for why this is a policy of
// its own and not just the KMIP state).
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { enumeration, structure, textString, dateTime } from '../ttlv/build.js';
import { Fields } from '../kmip/fields.js';
import { KmipError } from '../kmip/errors.js';
import { RevocationReasonCode, Tag } from '../kmip/registry/generated.js';
import type { Attribute } from '../kmip/attributes.js';
import type { KeyProtector, OperationContext, OperationHandler } from '../operations/context.js';
import { revoke } from '../operations/revoke.js';
import { destroy } from '../operations/destroy.js';
import type { InventoryRow } from '../store/key-inventory.js';
import type { KeyStore, StoredObject } from '../store/types.js';
import { SERVER_VENDOR, SERVER_VERSION } from '../server/app.js';
import { addStoreOptions, storeTarget, withOperatorStore, type StoreOpts, type OperatorStore } from './data-folder.js';
import { audited } from './operator-audit.js';
import { printJson, table, when } from './format.js';
import { attributeText, namesOf, plainAttributes, STATE_NAMES, stateText } from './render-attributes.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');

export const REVOCATION_REASONS: Readonly<Record<string, number>> = {
  'key-compromise': RevocationReasonCode.KeyCompromise,
  'ca-compromise': RevocationReasonCode.CACompromise,
  'affiliation-changed': RevocationReasonCode.AffiliationChanged,
  superseded: RevocationReasonCode.Superseded,
  'cessation-of-operation': RevocationReasonCode.CessationOfOperation,
  'privilege-withdrawn': RevocationReasonCode.PrivilegeWithdrawn,
  unspecified: RevocationReasonCode.Unspecified,
};

/** The CLI never unwraps: revoke and destroy do not need key material. */
const NO_KEY_MATERIAL: KeyProtector = {
  generateWrappedKey: () => Promise.reject(new Error('not available to operator commands')),
  newWrappedKey: () => Promise.reject(new Error('not available to operator commands')),
  wrapPlaintextKey: () => Promise.reject(new Error('not available to operator commands')),
  wrapSecretBytes: () => Promise.reject(new Error('not available to operator commands')),
  unwrapKey: () => Promise.reject(new Error('not available to operator commands')),
};

/** Runs a KMIP handler as the operator, in the key's own tenant. */
async function asOperator(store: KeyStore, key: InventoryRow, handler: OperationHandler, payload: Parameters<typeof structure>[1]): Promise<void> {
  const ctx: OperationContext = {
    version: { major: 2, minor: 1 },
    client: { name: 'operator', tenant: key.tenant, role: 'manager', commonName: 'kmipd CLI', fingerprintSha256: '' },
    store,
    keys: NO_KEY_MATERIAL,
    log: pino({ level: 'silent' }),
    server: { vendor: SERVER_VENDOR, version: SERVER_VERSION },
    idPlaceholder: undefined,
    secrets: [],
    objectId: undefined,
  };
  // The store's update reads then writes in one deferred transaction; if a server commits in
  // between, SQLite answers SQLITE_BUSY(_SNAPSHOT) at once instead of waiting: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await handler(ctx, Fields.of(structure(Tag.RequestPayload, payload), 'Request Payload'));
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt >= 5 || typeof code !== 'string' || !code.startsWith('SQLITE_BUSY')) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

async function requireKey(s: OperatorStore, id: string): Promise<InventoryRow> {
  const row = await s.inventory.get(id);
  if (!row) throw new Error(`no key with id ${id}`);
  return row;
}

function kmipMessage(err: unknown): Error {
  return err instanceof KmipError ? new Error(err.message) : (err as Error);
}

// ---------------------------------------------------------------- list / show

interface KeyView {
  id: string;
  tenant: string;
  state: string;
  names: string[];
  algorithm: string;
  rootKey: string | null;
  keyMaterial: 'wrapped' | 'erased';
  operatorRevoked: boolean;
  createdAt: Date;
  attributes: Record<string, unknown>;
}

function view(row: InventoryRow, obj: StoredObject | undefined): KeyView {
  const attrs = obj?.attributes ?? [];
  const plain = plainAttributes(attrs);
  const alg = plain['Cryptographic Algorithm'];
  const len = plain['Cryptographic Length'];
  return {
    id: row.id,
    tenant: row.tenant,
    state: stateText(row.state),
    names: namesOf(attrs),
    algorithm: alg !== undefined ? `${String(alg)}${len !== undefined ? `-${String(len)}` : ''}` : '-',
    rootKey: row.hasKeyMaterial ? (row.rootKeyLabel ?? null) : null,
    keyMaterial: row.hasKeyMaterial ? 'wrapped' : 'erased',
    operatorRevoked: row.held,
    createdAt: row.createdAt,
    attributes: plain,
  };
}

function matchesAttribute(attrs: readonly Attribute[], filter: { name: string; value: string }): boolean {
  return attrs.some((a) => a.name === filter.name && attributeText(a) === filter.value);
}

function parseAttrFilter(v: string, prev: { name: string; value: string }[] = []): { name: string; value: string }[] {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new Error(`--attr must be NAME=VALUE, got ${JSON.stringify(v)}`);
  return [...prev, { name: v.slice(0, eq), value: v.slice(eq + 1) }];
}

function parseState(v: string, prev: number[] = []): number[] {
  const s = STATE_NAMES[v.toLowerCase()];
  if (s === undefined) throw new Error(`--state must be one of ${Object.keys(STATE_NAMES).join(', ')}`);
  return [...prev, s];
}

async function listKeys(o: { data: string; tenant?: string; states?: number[]; name?: string; attrs?: { name: string; value: string }[]; json: boolean } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), async (s) => {
    const views: KeyView[] = [];
    for (const row of await s.inventory.list({ tenant: o.tenant, states: o.states })) {
      const obj = await s.objects.get(row.id);
      const attrs = obj?.attributes ?? [];
      if (o.name !== undefined && !namesOf(attrs).includes(o.name)) continue;
      if (o.attrs && !o.attrs.every((f) => matchesAttribute(attrs, f))) continue;
      views.push(view(row, obj));
    }
    if (o.json) return printJson(views);
    console.log(
      table(
        ['ID', 'TENANT', 'STATE', 'NAME', 'ALGORITHM', 'ROOT KEY', 'SERVED', 'CREATED'],
        views.map((v) => [
          v.id,
          v.tenant,
          v.state,
          v.names.join(',') || '-',
          v.algorithm,
          v.rootKey ?? '-',
          v.keyMaterial === 'erased' ? 'no (erased)' : v.operatorRevoked ? 'no (revoked by operator)' : 'yes',
          when(v.createdAt),
        ]),
      ),
    );
  });
}

async function showKey(o: { data: string; id: string; json: boolean } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), async (s) => {
    const row = await requireKey(s, o.id);
    const v = view(row, await s.objects.get(o.id));
    const hold = await s.holds.get(o.id);
    const full = { ...v, operatorRevocation: hold ? { at: hold.heldAt, reason: hold.reason, message: hold.message ?? null } : null };
    if (o.json) return printJson(full);
    // Where the key material stands ('wrapped' or 'erased'), never the material itself.
    const materialState = v.keyMaterial;
    console.log(`id:           ${v.id}`);
    console.log(`tenant:       ${v.tenant}`);
    console.log(`state:        ${v.state}`);
    console.log(`key material: ${materialState}${v.rootKey ? ` (under root key ${v.rootKey})` : ''}`);
    console.log(`served:       ${materialState === 'erased' ? 'no (erased)' : hold ? `no: revoked by the operator ${when(hold.heldAt)} (${hold.reason})` : 'yes'}`);
    console.log('attributes:');
    for (const [name, value] of Object.entries(v.attributes)) console.log(`  ${name}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  });
}

// ---------------------------------------------------------------- revoke / destroy

async function revokeKey(o: { data: string; id: string; reason: string; message?: string | undefined; compromisedAt?: Date | undefined } & StoreOpts): Promise<void> {
  const code = REVOCATION_REASONS[o.reason];
  if (code === undefined) throw new Error(`--reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')}`);
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, { operation: 'keys revoke', object: o.id, detail: { revocationReason: o.reason, revocationMessage: o.message } }, async () => {
      const key = await requireKey(s, o.id);
      // The hold first: from this instant no node serves the key, even before the state changes.
      const placed = await s.holds.hold(o.id, o.reason, o.message);
      try {
        await asOperator(s.objects, key, revoke, [
          textString(Tag.UniqueIdentifier, o.id),
          structure(Tag.RevocationReason, [
            enumeration(Tag.RevocationReasonCode, code),
            ...(o.message !== undefined ? [textString(Tag.RevocationMessage, o.message)] : []),
          ]),
          ...(o.compromisedAt ? [dateTime(Tag.CompromiseOccurrenceDate, BigInt(Math.floor(o.compromisedAt.getTime() / 1000)))] : []),
        ]);
      } catch (err) {
        if (placed) await s.holds.release(o.id);
        throw kmipMessage(err);
      }
      const after = await requireKey(s, o.id);
      console.log(`key ${o.id} revoked (${o.reason}): state ${stateText(after.state)}; it is no longer served to any client`);
    }),
  );
}

async function destroyKey(o: { data: string; id: string; yes: boolean } & StoreOpts): Promise<void> {
  if (!o.yes) throw new Error('destroy erases the key for good; repeat with --yes');
  await withOperatorStore(storeTarget(o.data, o), (s) =>
    audited(o.data, { operation: 'keys destroy', object: o.id }, async () => {
      const key = await requireKey(s, o.id);
      try {
        await asOperator(s.objects, key, destroy, [textString(Tag.UniqueIdentifier, o.id)]);
      } catch (err) {
        throw kmipMessage(err);
      }
      const after = await requireKey(s, o.id);
      if (after.hasKeyMaterial) throw new Error(`key ${o.id}: the wrapped key is still present after destroy`);
      console.log(`key ${o.id} destroyed: wrapped key overwritten and removed; attributes kept (state ${stateText(after.state)})`);
    }),
  );
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('inspect, revoke and destroy managed keys (never shows key material)');
  keys
    .command('list')
    .description('list keys, optionally filtered')
    .addOption(dataOption())
    .option('--tenant <tenant>', 'only this tenant')
    .option('--state <state>', `only this state (repeatable): ${Object.keys(STATE_NAMES).join(', ')}`, parseState)
    .option('--name <name>', 'only keys with this Name')
    .option('--attr <name=value>', 'only keys whose attribute has this value, e.g. x-cluster=prod (repeatable)', parseAttrFilter)
    .option('--json', 'JSON instead of a table', false)
    .action((o) => listKeys({ ...storeTarget(resolve(o.data), o), tenant: o.tenant, states: o.state, name: o.name, attrs: o.attr, json: o.json }));
  keys
    .command('show <id>')
    .description('one key: state, attributes, whether it is served (never its material)')
    .addOption(dataOption())
    .option('--json', 'JSON', false)
    .action((id: string, o) => showKey({ ...storeTarget(resolve(o.data), o), id, json: o.json }));
  keys
    .command('revoke <id>')
    .description('revoke a key: KMIP Revoke semantics for its state, and it is not served to any client from now on')
    .addOption(dataOption())
    .requiredOption('--reason <reason>', `${Object.keys(REVOCATION_REASONS).join(', ')} (key-/ca-compromise → Compromised, others → Deactivated)`)
    .option('--message <text>', 'revocation message, kept with the key')
    .option('--compromised-at <iso-date>', 'when the compromise occurred (key-compromise, ca-compromise)', (v: string) => {
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) throw new Error('--compromised-at must be an ISO-8601 date');
      return d;
    })
    .action((id: string, o) => revokeKey({ ...storeTarget(resolve(o.data), o), id, reason: o.reason, message: o.message, compromisedAt: o.compromisedAt }));
  keys
    .command('destroy <id>')
    .description('crypto-erase a key: the wrapped key is overwritten and removed, the attributes stay as a tombstone')
    .addOption(dataOption())
    .option('--yes', 'confirm: this cannot be undone', false)
    .action((id: string, o) => destroyKey({ ...storeTarget(resolve(o.data), o), id, yes: o.yes }));
  for (const sub of keys.commands) addStoreOptions(sub);
}
