// What one request's building blocks cost, measured in-process one call after another (no
// concurrency, no TLS): the HSM calls a Create and a Get make, the store calls, and TTLV decoding
// and encoding. Together with the Discover Versions workload (TLS, framing, dispatch, audit) this
// splits a Get or a Create into its parts. Run as its own process (SoftHSM reads its
// configuration once per process), on a data folder whose server is stopped:
//   vite-node bench/components.ts -- --data DIR --template ID --out FILE
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { byteString, dateTime, decodeTtlv, encodeTtlv, enumeration, integer, structure, textString } from '../src/ttlv/index.js';
import { CryptographicAlgorithm, KeyFormatType, NameType, ObjectType, Operation, ResultStatus, Tag } from '../src/kmip/registry/generated.js';
import { Hsm } from '../src/hsm/index.js';
import { newUniqueIdentifier } from '../src/kmip/unique-identifier.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { loadConfig, readPin, resolveIn } from '../src/server/config.js';
import { getRequest } from './requests.js';

const nameValue = (name: string) =>
  structure(Tag.AttributeValue, [textString(Tag.NameValue, name), enumeration(Tag.NameType, NameType.UninterpretedTextString)]);

export interface ComponentCost {
  readonly what: string;
  readonly calls: number;
  /** Wall time per call, µs (one call at a time). */
  readonly wallUs: number;
  /** CPU time of this process per call, µs (user + system, all its threads). */
  readonly cpuUs: number;
}

async function measure(what: string, calls: number, call: (i: number) => unknown): Promise<ComponentCost> {
  for (let i = 0; i < Math.min(50, calls); i++) await call(i); // warm up (JIT, caches)
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await call(i);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { what, calls, wallUs: (wall * 1000) / calls, cpuUs: (cpu.user + cpu.system) / calls };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: { data: { type: 'string' }, template: { type: 'string' }, out: { type: 'string' } },
  });
  if (!values.data || !values.template || !values.out) throw new Error('usage: components --data DIR --template ID --out FILE');
  const data = values.data;
  const cfg = loadConfig(data);
  const hsm = await Hsm.open({
    modulePath: cfg.hsm.module,
    tokenLabel: cfg.hsm.tokenLabel,
    pin: readPin(data, cfg.hsm.pin),
    rootKeyLabel: cfg.hsm.rootKeyLabel,
    ...(cfg.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(data, cfg.hsm.softhsmConf) } } : {}),
  });
  const store = new SqliteStore(resolveIn(data, cfg.store.sqlite));
  const template = await store.get(values.template);
  if (!template?.wrapped) throw new Error(`template key ${values.template} not found`);
  const { id: _id, wrapped: _wrapped, ...sameForEveryKey } = template;

  const out: ComponentCost[] = [];
  const keys: { id: string; wrapped: NonNullable<typeof template.wrapped> }[] = [];
  out.push(
    await measure('HSM generateWrappedKey (Create)', 1000, async () => {
      const id = newUniqueIdentifier();
      keys.push({ id, wrapped: await hsm.generateWrappedKey(id, 256) });
    }),
  );
  // As the server writes: one transaction per object, synchronous = FULL (fsync before returning).
  let n = 0;
  out.push(
    await measure('store insert, durable (Create)', 300, async () => {
      const k = keys[n++ % keys.length]!;
      await store.insert({ ...sameForEveryKey, id: `${k.id}-${n}`, wrapped: k.wrapped });
    }),
  );
  const ids = keys.map((k) => k.id);
  // Each of these 200 keys has its own Name (component-<i>), for the Locate below.
  const withName = (i: number) => sameForEveryKey.attributes.filter((a) => a.name !== 'Name').concat({ name: 'Name', index: 0, value: nameValue(`component-${i}`) });
  for (const [i, k] of keys.slice(0, 200).entries()) await store.insert({ ...sameForEveryKey, attributes: withName(i), id: k.id, wrapped: k.wrapped });
  out.push(await measure('store get (Get, Get Attributes)', 5000, (i) => store.get(ids[i % 200]!)));
  out.push(
    await measure('store locate by name (Locate)', 5000, async (i) => {
      const found = await store.locate({
        tenant: sameForEveryKey.tenant,
        objectType: undefined,
        states: undefined,
        matches: [{ name: 'Name', value: nameValue(`component-${i % 200}`) }],
        includeDestroyed: false,
        maxItems: undefined,
        offset: 0,
      });
      if (found.total !== 1) throw new Error(`Locate of component-${i % 200} found ${found.total} keys`);
    }),
  );
  out.push(
    await measure('HSM unwrapKey (Get)', 3000, async (i) => {
      const k = keys[i % 200]!;
      (await hsm.unwrapKey(k.id, k.wrapped)).fill(0);
    }),
  );
  const request = getRequest(ids[0]!);
  out.push(await measure('decode a Get request (TTLV)', 20000, () => decodeTtlv(request)));
  const material = randomBytes(32);
  out.push(
    await measure('encode a Get response (TTLV)', 20000, () =>
      encodeTtlv(
        structure(Tag.ResponseMessage, [
          structure(Tag.ResponseHeader, [
            structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, 1), integer(Tag.ProtocolVersionMinor, 2)]),
            dateTime(Tag.TimeStamp, new Date()),
            integer(Tag.BatchCount, 1),
          ]),
          structure(Tag.BatchItem, [
            enumeration(Tag.Operation, Operation.Get),
            enumeration(Tag.ResultStatus, ResultStatus.Success),
            structure(Tag.ResponsePayload, [
              enumeration(Tag.ObjectType, ObjectType.SymmetricKey),
              textString(Tag.UniqueIdentifier, ids[0]!),
              structure(Tag.SymmetricKey, [
                structure(Tag.KeyBlock, [
                  enumeration(Tag.KeyFormatType, KeyFormatType.Raw),
                  structure(Tag.KeyValue, [byteString(Tag.KeyMaterial, material)]),
                  enumeration(Tag.CryptographicAlgorithm, CryptographicAlgorithm.AES),
                  integer(Tag.CryptographicLength, 256),
                ]),
              ]),
            ]),
          ]),
        ]),
      ),
    ),
  );
  material.fill(0);
  await store.close();
  await hsm.close();
  writeFileSync(values.out, JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
