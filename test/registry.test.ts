// The committed registry must be exactly what the generator produces from the committed source.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate } from '../scripts/gen-registry.mjs';
import { ResultReason, Tag, TAG_INFO } from '../src/kmip/registry/generated.js';

describe('KMIP registry', () => {
  it('generated.ts is up to date with scripts/gen-registry.mjs (run npm run gen:registry)', () => {
    const committed = readFileSync(new URL('../src/kmip/registry/generated.ts', import.meta.url), 'utf8');
    const fresh = generate();
    // Compare lengths first so that a mismatch does not print two 100 KB strings.
    expect(fresh.length).toBe(committed.length);
    expect(fresh === committed).toBe(true);
  });

  it('has the spec values', () => {
    expect(Tag.RequestMessage).toBe(0x420078);
    expect(Tag.ResponseMessage).toBe(0x42007b);
    expect(Tag.VendorExtension).toBe(0x42009c);
    expect(ResultReason.ItemNotFound).toBe(1);
    expect(TAG_INFO.get(0x420078)?.xml).toBe('RequestMessage');
  });
});
