// Fills a kmipd data folder with many keys quickly, for the "scale with stored keys" figures.
// Every key is real: its material is generated in the folder's HSM token and wrapped for its own
// object id (Hsm.generateWrappedKey), an id picked as the server picks one (newUniqueIdentifier),
// and its row is written by SqliteStore.insert with the attributes of a template key that the
// server itself created over KMIP (Create with a Name); only the Name (and the Digest, when the
// server records one) differ. What is skipped is the KMIP/TLS round trip per key. Run it as its
// own process (SoftHSM reads its configuration once per process), with the server stopped:
//   vite-node bench/bulk-load.ts -- --data DIR --template ID --count N --sample K --out keys.json
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { byteString, ItemType, textString, type TtlvItem } from '../src/ttlv/index.js';
import { Tag } from '../src/kmip/registry/generated.js';
import { Hsm } from '../src/hsm/index.js';
import { newUniqueIdentifier } from '../src/kmip/unique-identifier.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { loadConfig, readPin, resolveIn } from '../src/server/config.js';
import type { Attribute } from '../src/kmip/attributes.js';
import type { SeededKey } from './requests.js';
import { keyName, runTag } from './seed.js';

/** Keys in flight at once: the HSM queue stays busy while SQLite commits. */
const PARALLEL = 8;

export interface BulkLoadReport {
  readonly count: number;
  readonly seconds: number;
  /** Evenly spread keys (the first and the last loaded included) for the workloads to address. */
  readonly sample: SeededKey[];
  /** Always 'relaxed': the loader commits without fsync (see main); the report says so. */
  readonly durability: 'relaxed';
}

/**
 * The template's attributes made this key's own: its Name, and its Digest (if the server records
 * one) from the digest the HSM computed for this key. Everything else is the same for every key.
 */
function attributesFor(template: readonly Attribute[], name: string, key: object): Attribute[] {
  let named = false;
  const replaceIn = (a: Attribute, tag: number, item: TtlvItem): Attribute => {
    if (a.value.type !== ItemType.Structure) throw new Error(`template attribute ${a.name} is not a structure`);
    return { ...a, value: { ...a.value, value: a.value.value.map((f: TtlvItem) => (f.tag === tag ? item : f)) } };
  };
  const out = template.map((a): Attribute => {
    if (a.name === 'Name') {
      named = true;
      return replaceIn(a, Tag.NameValue, textString(Tag.NameValue, name));
    }
    if (a.name === 'Digest') {
      const digest = (key as { digest?: unknown }).digest;
      if (!(digest instanceof Uint8Array)) throw new Error('the server records a Digest but the HSM returned none for this key');
      return replaceIn(a, Tag.DigestValue, byteString(Tag.DigestValue, digest));
    }
    return a;
  });
  if (!named) throw new Error('the template key has no Name attribute');
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      data: { type: 'string' },
      template: { type: 'string' },
      count: { type: 'string' },
      sample: { type: 'string', default: '1000' },
      out: { type: 'string' },
    },
  });
  if (!values.data || !values.template || !values.count || !values.out) {
    throw new Error('usage: bulk-load --data DIR --template ID --count N [--sample K] --out FILE');
  }
  const data = values.data;
  const count = Number(values.count);
  const sampleSize = Math.min(count, Number(values.sample));
  const cfg = loadConfig(data);
  const hsm = await Hsm.open({
    modulePath: cfg.hsm.module,
    tokenLabel: cfg.hsm.tokenLabel,
    pin: readPin(data, cfg.hsm.pin),
    rootKeyLabel: cfg.hsm.rootKeyLabel,
    ...(cfg.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(data, cfg.hsm.softhsmConf) } } : {}),
  });
  const store = new SqliteStore(resolveIn(data, cfg.store.sqlite));
  // Loading commits without waiting for fsync: a million fsyncs would take most of an hour and
  // say nothing about serving. The rows are the same; the server opens the file with its own settings.
  store.relaxDurabilityForBulkLoad();
  const template = await store.get(values.template);
  if (!template?.wrapped) throw new Error(`template key ${values.template} not found (or destroyed)`);
  const { id: _templateId, wrapped: _templateKey, attributes: _templateAttributes, ...sameForEveryKey } = template;
  const lengthAttr = template.attributes.find((a) => a.name === 'Cryptographic Length')?.value;
  const bits = lengthAttr?.type === ItemType.Integer ? lengthAttr.value : NaN;
  if (bits !== 128 && bits !== 192 && bits !== 256) throw new Error('the template key is not an AES key');

  const tag = runTag();
  const every = Math.max(1, Math.floor(count / sampleSize));
  const sample: SeededKey[] = [];
  const started = Date.now();
  let next = 0;
  let lastReport = started;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const name = keyName(tag, i);
      const id = newUniqueIdentifier(); // as the server names keys, so the store's indexes look like a real one's
      const wrapped = await hsm.generateWrappedKey(id, bits);
      // Whatever else the server keeps per object (e.g. its owner) is the template's.
      await store.insert({ ...sameForEveryKey, id, wrapped, attributes: attributesFor(template.attributes, name, wrapped) });
      if ((i % every === 0 && sample.length < sampleSize) || i === count - 1) sample.push({ id, name });
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        process.stderr.write(`bulk-load: ${i + 1}/${count} keys, ${Math.round((i + 1) / ((lastReport - started) / 1000))}/s\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  await store.close();
  await hsm.close();
  const report: BulkLoadReport = { count, seconds: (Date.now() - started) / 1000, sample, durability: 'relaxed' };
  writeFileSync(values.out, JSON.stringify(report));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
