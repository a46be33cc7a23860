import { describe, expect, it, vi } from 'vitest';
import { newUniqueIdentifier } from '../../src/kmip/unique-identifier.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string): number => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('newUniqueIdentifier', () => {
  it('makes version 7 UUIDs that are all different and sort in the order they were made, across many refills of its random bytes', () => {
    const before = Date.now();
    const ids = Array.from({ length: 3000 }, newUniqueIdentifier); // ~12 draws of 256 ids
    const after = Date.now();
    for (const id of ids) expect(id).toMatch(V7);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(msOf(ids[0]!)).toBeGreaterThanOrEqual(before);
    expect(msOf(ids.at(-1)!)).toBeLessThanOrEqual(after + 1);
    // Random bits differ from id to id, not only the counter: the last 6 bytes are drawn for each id.
    expect(new Set(ids.map((id) => id.slice(-12))).size).toBe(ids.length);
  });

  it('keeps counting within one millisecond, and stays in order when the clock steps back', () => {
    const now = vi.spyOn(Date, 'now');
    try {
      now.mockReturnValue(4_102_444_800_000); // 2100-01-01, later than any id made before in this file
      const same = Array.from({ length: 500 }, newUniqueIdentifier);
      expect(new Set(same.map(msOf))).toEqual(new Set([4_102_444_800_000]));
      now.mockReturnValue(4_102_444_700_000); // 100 s back
      const back = Array.from({ length: 10 }, newUniqueIdentifier);
      const all = [...same, ...back];
      expect(new Set(all).size).toBe(all.length);
      expect([...all].sort()).toEqual(all);
      expect(msOf(back.at(-1)!)).toBe(4_102_444_800_000);
    } finally {
      now.mockRestore();
    }
  });
});
