// Human-readable dump of an item tree, one item per line, for operators and debugging.
// It prints everything it is given, Byte Strings included: redacting key material before
// logging is the caller's job (it knows which tags are secret; the codec does not).

import { ItemType, typeName, type TtlvItem } from './types.js';

/**
 * @param tagName optional tag-to-name lookup (e.g. from the KMIP registry); unnamed tags print as hex only.
 * @returns lines like `ProtocolVersionMajor (0x42006A) Integer: 1`, indented two spaces per level.
 */
export function formatTtlv(item: TtlvItem, tagName?: (tag: number) => string | undefined): string {
  const lines: string[] = [];
  const visit = (it: TtlvItem, indent: string): void => {
    const hexTag = '0x' + it.tag.toString(16).toUpperCase().padStart(6, '0');
    const name = tagName?.(it.tag);
    const head = `${indent}${name !== undefined ? `${name} (${hexTag})` : hexTag} ${typeName(it.type)}`;
    if (it.type === ItemType.Structure) {
      lines.push(it.value.length === 0 ? `${head} (empty)` : head);
      for (const child of it.value) visit(child, indent + '  ');
    } else {
      lines.push(`${head}: ${formatValue(it)}`);
    }
  };
  visit(item, '');
  return lines.join('\n');
}

function formatValue(it: Exclude<TtlvItem, { type: typeof ItemType.Structure }>): string {
  switch (it.type) {
    case ItemType.Integer:
    case ItemType.LongInteger:
      return String(it.value);
    case ItemType.Enumeration:
      return `0x${it.value.toString(16).toUpperCase().padStart(8, '0')} (${it.value})`;
    case ItemType.Interval:
      return `${it.value} s`;
    case ItemType.BigInteger:
      return `${it.value < 0n ? '-' : ''}0x${(it.value < 0n ? -it.value : it.value).toString(16).toUpperCase()}`;
    case ItemType.Boolean:
      return it.value ? 'true' : 'false';
    case ItemType.TextString:
      return JSON.stringify(it.value);
    case ItemType.ByteString:
      return `[${it.value.length}] ${Buffer.from(it.value.buffer, it.value.byteOffset, it.value.length).toString('hex').toUpperCase()}`;
    case ItemType.DateTime:
      return `${it.value} (${iso(it.value * 1000n)})`;
    case ItemType.DateTimeExtended:
      return `${it.value} µs (${iso(it.value / 1000n)})`;
  }
}

/** ISO-8601 for an epoch-milliseconds bigint, or "out of range" beyond what Date can show. */
function iso(ms: bigint): string {
  const MAX = 8_640_000_000_000_000n; // Date's limit
  return ms >= -MAX && ms <= MAX ? new Date(Number(ms)).toISOString() : 'out of Date range';
}
