// The attributes the server gives every new key (1.4 §3, 2.1 §4: "initially set by server"), and
// its initial state. They are stored for all versions; Get Attributes shows each one only to
// clients whose version defines it (e.g. Fresh from 1.1, Original Creation Date from 1.2,
// Sensitive/Extractable from 1.4, Short Unique Identifier and Key Format Type from 2.x).
import { createHash } from 'node:crypto';
import { boolean, byteString, enumeration, integer, interval, structure } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { HashingAlgorithm, KeyFormatType, ProtectionStorageMask, RNGAlgorithm, State, Tag } from '../kmip/registry/generated.js';
import { constantAttribute, type Attribute } from '../kmip/attributes.js';
import { dateAttribute, nowSeconds } from './common.js';
import { single } from './object-attributes.js';
import { LEASE_SECONDS } from './obtain-lease.js';

const value = (name: string, v: Attribute['value']): Attribute => ({ name, index: 0, value: v });

function flag(clientAttrs: readonly Attribute[], name: string, fallback: boolean): boolean {
  const v = single(clientAttrs, name)?.value;
  return v?.type === ItemType.Boolean ? v.value : fallback;
}

/** SHA-256 Digest attribute of Raw key bytes (1.4 §3.17; Key Format Type inside from 1.1 on). */
export function digestAttribute(sha256: Uint8Array, keyFormat: number = KeyFormatType.Raw): Attribute {
  return value(
    'Digest',
    structure(Tag.AttributeValue, [
      enumeration(Tag.HashingAlgorithm, HashingAlgorithm.SHA_256),
      byteString(Tag.DigestValue, sha256),
      enumeration(Tag.KeyFormatType, keyFormat),
    ]),
  );
}

export interface NewKey {
  readonly id: string;
  readonly clientAttrs: readonly Attribute[];
  /** Format the key is kept in and served in by default: Raw, or as registered; none for objects without a Key Block. */
  readonly keyFormat: number | undefined;
  /** SHA-256 of the Raw key bytes, when known. */
  readonly digest: Uint8Array | undefined;
}

// What every new key shares is made once (constantAttribute), not per Create, and the store keeps
// a constant's encoding in its attribute bag: ~3 µs less of a Create's event-loop time
// (bench/RESULTS.md, twenty-first round).
const bothWays = (name: string): Readonly<Record<'true' | 'false', Attribute>> => ({
  true: constantAttribute(name, boolean(Tag.AttributeValue, true)),
  false: constantAttribute(name, boolean(Tag.AttributeValue, false)),
});
const ALWAYS_SENSITIVE = bothWays('Always Sensitive');
const NEVER_EXTRACTABLE = bothWays('Never Extractable');
const LEASE_TIME = constantAttribute('Lease Time', interval(Tag.AttributeValue, LEASE_SECONDS));
// The key itself is kept in software (the database), wrapped by a key held in the HSM.
const PROTECTION_STORAGE_MASK = constantAttribute('Protection Storage Mask', integer(Tag.AttributeValue, ProtectionStorageMask.Software));
const FRESH = constantAttribute('Fresh', boolean(Tag.AttributeValue, true));
const NOT_SENSITIVE = constantAttribute('Sensitive', boolean(Tag.AttributeValue, false));
const EXTRACTABLE = constantAttribute('Extractable', boolean(Tag.AttributeValue, true));
// The HSM's generator is not described to us; say so rather than guess an algorithm.
const RNG_UNSPECIFIED = constantAttribute('Random Number Generator', structure(Tag.AttributeValue, [enumeration(Tag.RNGAlgorithm, RNGAlgorithm.Unspecified)]));
const KEY_FORMAT_TYPES = new Map<number, Attribute>();
/** Far more than the formats the server keeps keys in: a Register cannot grow the map without end. */
const MAX_KEY_FORMAT_TYPES = 64;
function keyFormatType(format: number): Attribute {
  const known = KEY_FORMAT_TYPES.get(format);
  if (known) return known;
  if (KEY_FORMAT_TYPES.size >= MAX_KEY_FORMAT_TYPES) return value('Key Format Type', enumeration(Tag.AttributeValue, format));
  const a = constantAttribute('Key Format Type', enumeration(Tag.AttributeValue, format));
  KEY_FORMAT_TYPES.set(format, a);
  return a;
}

export function serverAttributes(k: NewKey): { state: number; attrs: Attribute[] } {
  const now = nowSeconds();
  const activation = single(k.clientAttrs, 'Activation Date')?.value;
  const active = activation?.type === ItemType.DateTime && activation.value <= now;
  const sensitive = flag(k.clientAttrs, 'Sensitive', false);
  const extractable = flag(k.clientAttrs, 'Extractable', true);
  const given = new Set(k.clientAttrs.map((a) => a.name));
  const attrs: Attribute[] = [
    dateAttribute('Initial Date', now),
    dateAttribute('Last Change Date', now),
    dateAttribute('Original Creation Date', now),
    LEASE_TIME,
    ALWAYS_SENSITIVE[`${sensitive}`],
    NEVER_EXTRACTABLE[`${!extractable}`],
    value('Short Unique Identifier', byteString(Tag.AttributeValue, createHash('sha256').update(k.id).digest())),
    PROTECTION_STORAGE_MASK,
  ];
  if (!given.has('Fresh')) attrs.push(FRESH);
  if (!given.has('Sensitive')) attrs.push(NOT_SENSITIVE);
  if (!given.has('Extractable')) attrs.push(EXTRACTABLE);
  if (!given.has('Random Number Generator')) attrs.push(RNG_UNSPECIFIED);
  if (k.keyFormat !== undefined) attrs.push(keyFormatType(k.keyFormat));
  if (k.digest) attrs.push(digestAttribute(k.digest, k.keyFormat ?? KeyFormatType.Raw));
  return { state: active ? State.Active : State.PreActive, attrs };
}
