// Keys the Get / Get Attributes / Locate workloads address, created through the server's own
// KMIP Create (so they are exactly what a client would find), then spot-checked with full
// decoding: Get returns 32 bytes of key material and Locate by name finds exactly that key.
import { randomBytes } from 'node:crypto';
import { decodeTtlv } from '../src/ttlv/index.js';
import { Tag } from '../src/kmip/registry/generated.js';
import { Fields } from '../src/kmip/fields.js';
import { BenchConnection, readClientMaterial, type ClientFiles, type Endpoint } from './connection.js';
import { createRequest, getRequest, locateByNameRequest, type SeededKey } from './requests.js';
import { checkAnswer } from './response.js';

function firstPayload(answer: Buffer): Fields {
  const check = checkAnswer(answer);
  if (!check.ok) throw new Error(`server answered ${check.failure}`);
  const item = Fields.of(Fields.of(decodeTtlv(answer)).requiredStruct(Tag.BatchItem));
  return Fields.of(item.requiredStruct(Tag.ResponsePayload));
}

/** A prefix that makes this run's key names unique in a store that already holds keys. */
export function runTag(): string {
  return randomBytes(4).toString('hex');
}

export const keyName = (tag: string, i: number) => `bench-${tag}-${i}`;

export async function seedKeys(endpoint: Endpoint, client: ClientFiles, count: number, connections = 4): Promise<SeededKey[]> {
  const material = readClientMaterial(client);
  const tag = runTag();
  const keys: SeededKey[] = new Array(count);
  let next = 0;
  const lane = async () => {
    const c = await BenchConnection.open(endpoint, material);
    try {
      while (next < count) {
        const i = next++;
        const name = keyName(tag, i);
        const id = firstPayload(await c.request(createRequest(name))).requiredText(Tag.UniqueIdentifier);
        keys[i] = { id, name };
      }
    } finally {
      c.close();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(connections, count)) }, lane));
  return keys;
}

/** Throws unless every sampled key is served (Get) and found by its name (Locate). */
export async function verifyKeys(endpoint: Endpoint, client: ClientFiles, keys: readonly SeededKey[], sample = 20): Promise<void> {
  const c = await BenchConnection.open(endpoint, readClientMaterial(client));
  try {
    const step = Math.max(1, Math.floor(keys.length / sample));
    for (let i = 0; i < keys.length; i += step) {
      const k = keys[i]!;
      const got = firstPayload(await c.request(getRequest(k.id)));
      if (got.text(Tag.UniqueIdentifier) !== k.id) throw new Error(`Get ${k.id} answered another object`);
      const block = Fields.of(Fields.of(got.requiredStruct(Tag.SymmetricKey)).requiredStruct(Tag.KeyBlock));
      const material = Fields.of(block.requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial);
      if (material.length !== 32) throw new Error(`Get ${k.id} returned ${material.length} bytes of key material`);
      const found = firstPayload(await c.request(locateByNameRequest(k.name))).texts(Tag.UniqueIdentifier);
      if (found.length !== 1 || found[0] !== k.id) throw new Error(`Locate ${k.name} found ${JSON.stringify(found)}, expected ${k.id}`);
    }
  } finally {
    c.close();
  }
}
