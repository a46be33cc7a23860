// PyKMIP's other symmetric-key methods (rekey, check, locate paging, modify / delete / set
// attribute) against the real server, at every KMIP version PyKMIP speaks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { runPykmip } from '../helpers/pykmip.js';

type Step = { ok: true; value: unknown } | { ok: false; status?: string; reason?: string; error?: string };
interface Report {
  version: string;
  steps: Record<string, Step>;
  made: string[];
}

let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'pykmip-methods');
  server = await startServe(dir.path);
});
afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

const value = (r: Report, name: string): unknown => {
  const s = r.steps[name];
  expect(s, `${name} at ${r.version}: ${JSON.stringify(s)}`).toMatchObject({ ok: true });
  return (s as { value: unknown }).value;
};

describe.each(['1.0', '1.1', '1.2', '1.3', '1.4', '2.0'])('PyKMIP methods at KMIP %s', (version) => {
  let r: Report;
  const v2 = version.startsWith('2');
  beforeAll(async () => {
    r = await runPykmip<Report>('symmetric-methods.py', server.port, client, version);
  });

  it('checks a usage the key allows, and refuses one it does not', () => {
    value(r, 'activate');
    expect(value(r, 'check_ok')).toBe(value(r, 'create'));
    if (!v2) expect(r.steps['check_bad_mask']).toMatchObject({ ok: false, status: 'OPERATION_FAILED', reason: 'PERMISSION_DENIED' });
  });

  it('re-keys into a new Active key with new material that takes the Name', () => {
    expect(value(r, 'rekey')).not.toBe(value(r, 'create'));
    expect(value(r, 'rekey_differs')).toBe(true);
    expect(value(r, 'rekey_attrs')).toMatchObject({ State: 'ACTIVE', 'Cryptographic Length': 256, Name: expect.stringMatching(/^m-/) });
  });

  it('modifies and deletes attributes, and refuses read-only ones', () => {
    if (v2) {
      expect(value(r, 'after_set')).toEqual({ Sensitive: true });
      expect(value(r, 'after_modify')).toEqual({ Sensitive: false });
      value(r, 'delete_attribute');
      expect(value(r, 'after_delete')).toEqual({});
    } else {
      expect(value(r, 'after_modify')).toEqual({ Name: expect.stringMatching(/^renamed-/) });
      expect(r.steps['modify_readonly']).toMatchObject({ ok: false });
      expect(String(value(r, 'delete_attribute'))).toContain('renamed-');
      expect(value(r, 'after_delete')).toEqual({});
    }
  });

  it('answers the cryptographic services (encrypt, decrypt, mac) with Operation Not Supported, and keeps serving', () => {
    for (const op of ['encrypt', 'decrypt', 'mac']) {
      expect(r.steps[op], `${op}: ${JSON.stringify(r.steps[op])}`).toMatchObject({ ok: false, status: 'OPERATION_FAILED', reason: 'OPERATION_NOT_SUPPORTED' });
    }
    expect(value(r, 'after_crypto')).toEqual({ State: 'ACTIVE' });
  });

  it('locates with Maximum Items, Offset Items and a Storage Status Mask', () => {
    expect(value(r, 'locate_all_symmetric')).toBe(true);
    const max = value(r, 'locate_max') as string[];
    expect(max).toHaveLength(2);
    if (!['1.0', '1.1', '1.2'].includes(version)) expect(value(r, 'locate_offset')).toEqual([max[1]]);
    expect(value(r, 'locate_online')).toEqual([r.made[0]]);
  });
});
