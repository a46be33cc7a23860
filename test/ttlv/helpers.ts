// Shared helpers for the TTLV tests. Fixtures are read from fixtures/vectors only.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { TtlvError, type TtlvErrorCode } from '../../src/ttlv/index.js';

export function loadVectors<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(`../../fixtures/vectors/${file}`, import.meta.url), 'utf8')) as T;
}

export const fromHex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex').toUpperCase();

/** Run fn, require a TtlvError, check its code (and offset when given), and return it. */
export function expectTtlvError(fn: () => unknown, code: TtlvErrorCode, offset?: number): TtlvError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a TtlvError').toBeInstanceOf(TtlvError);
  const err = caught as TtlvError;
  expect(err.code, err.message).toBe(code);
  if (offset !== undefined) expect(err.offset, err.message).toBe(offset);
  return err;
}
