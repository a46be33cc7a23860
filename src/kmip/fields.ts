// Typed access to the children of a TTLV structure. Every accessor checks the item type, so a
// known tag carrying the wrong type becomes a KMIP Invalid Field error rather than a crash.
import { ItemType, type ItemOf, type StructureItem, type TtlvItem } from '../ttlv/types.js';
import { TAG_INFO } from './registry/generated.js';
import { invalidField } from './errors.js';

export function tagLabel(tag: number): string {
  return TAG_INFO.get(tag)?.name ?? `0x${tag.toString(16).toUpperCase()}`;
}

function expectType<T extends ItemType>(item: TtlvItem, type: T): ItemOf<T> {
  if (item.type !== type) {
    throw invalidField(`${tagLabel(item.tag)} has item type ${item.type}, expected ${type}`);
  }
  return item as ItemOf<T>;
}

export class Fields {
  constructor(readonly items: readonly TtlvItem[], readonly owner = 'structure') {}

  static of(item: TtlvItem | undefined, owner?: string): Fields {
    if (item === undefined) return new Fields([], owner);
    return new Fields(expectType(item, ItemType.Structure).value, owner ?? tagLabel(item.tag));
  }

  has(tag: number): boolean {
    return this.items.some((i) => i.tag === tag);
  }

  first(tag: number): TtlvItem | undefined {
    return this.items.find((i) => i.tag === tag);
  }

  all(tag: number): TtlvItem[] {
    return this.items.filter((i) => i.tag === tag);
  }

  private req(tag: number): TtlvItem {
    const i = this.first(tag);
    if (i === undefined) throw invalidField(`${this.owner} is missing ${tagLabel(tag)}`);
    return i;
  }

  struct(tag: number): StructureItem | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.Structure);
  }
  requiredStruct(tag: number): StructureItem {
    return expectType(this.req(tag), ItemType.Structure);
  }
  structs(tag: number): StructureItem[] {
    return this.all(tag).map((i) => expectType(i, ItemType.Structure));
  }
  text(tag: number): string | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.TextString).value;
  }
  requiredText(tag: number): string {
    return expectType(this.req(tag), ItemType.TextString).value;
  }
  texts(tag: number): string[] {
    return this.all(tag).map((i) => expectType(i, ItemType.TextString).value);
  }
  integer(tag: number): number | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.Integer).value;
  }
  requiredInteger(tag: number): number {
    return expectType(this.req(tag), ItemType.Integer).value;
  }
  enumeration(tag: number): number | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.Enumeration).value;
  }
  requiredEnumeration(tag: number): number {
    return expectType(this.req(tag), ItemType.Enumeration).value;
  }
  enumerations(tag: number): number[] {
    return this.all(tag).map((i) => expectType(i, ItemType.Enumeration).value);
  }
  boolean(tag: number): boolean | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.Boolean).value;
  }
  bytes(tag: number): Uint8Array | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.ByteString).value;
  }
  requiredBytes(tag: number): Uint8Array {
    return expectType(this.req(tag), ItemType.ByteString).value;
  }
  dateTime(tag: number): bigint | undefined {
    const i = this.first(tag);
    return i === undefined ? undefined : expectType(i, ItemType.DateTime).value;
  }
}
