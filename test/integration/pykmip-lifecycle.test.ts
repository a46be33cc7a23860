// The real PyKMIP client against the real server (child process, mutual TLS, SoftHSM token,
// SQLite file) through the symmetric-key lifecycle at every KMIP version PyKMIP speaks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { runPykmip } from '../helpers/pykmip.js';

type Step = { ok: true; value: unknown } | { ok: false; status?: string; reason?: string; message?: string; error?: string };
interface Report {
  version: string;
  steps: Record<string, Step>;
  registered_material: string;
}

const VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4', '2.0'];

let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'pykmip');
  server = await startServe(dir.path);
});

afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

function ok(r: Report, name: string): unknown {
  const s = r.steps[name];
  expect(s, `step ${name} missing`).toBeDefined();
  expect(s, `step ${name} at ${r.version}: ${JSON.stringify(s)}`).toMatchObject({ ok: true });
  return (s as { value: unknown }).value;
}
function failed(r: Report, name: string): { reason?: string } {
  const s = r.steps[name];
  expect(s, `step ${name} at ${r.version} should fail: ${JSON.stringify(s)}`).toMatchObject({ ok: false, status: 'OPERATION_FAILED' });
  return s as { reason?: string };
}

describe.each(VERSIONS)('PyKMIP ProxyKmipClient at KMIP %s', (version) => {
  let r: Report;
  beforeAll(async () => {
    r = await runPykmip<Report>('lifecycle.py', server.port, client, version);
  });

  it('creates AES-128/192/256 keys and gets the same bytes every time', () => {
    for (const bits of [128, 192, 256]) {
      const uid = ok(r, `create_${bits}`);
      expect(uid).toMatch(/^[0-9a-f-]{36}$/);
      const first = ok(r, `get_${bits}_1`) as string;
      expect(first).toHaveLength(bits / 4);
      expect(ok(r, `get_${bits}_2`)).toBe(first);
    }
  });

  it('returns the requested attributes', () => {
    const attrs = ok(r, 'get_attributes') as Record<string, unknown[]>;
    expect(attrs['Cryptographic Algorithm']).toEqual(['AES']);
    expect(attrs['Cryptographic Length']).toEqual([256]);
    expect(attrs['State']).toEqual(['PRE_ACTIVE']);
    expect(attrs['Object Type']).toEqual(['SYMMETRIC_KEY']);
    expect(attrs['Unique Identifier']).toEqual([ok(r, 'create_256')]);
    expect(attrs['Name']).toEqual([expect.stringMatching(/^pykmip-/)]);
    const all = ok(r, 'get_attributes_all') as Record<string, unknown[]>;
    expect(Object.keys(all)).toEqual(expect.arrayContaining(['Cryptographic Algorithm', 'State', 'Name', 'Initial Date']));
  });

  it('lists attribute names', () => {
    expect(ok(r, 'get_attribute_list')).toEqual(
      expect.arrayContaining(['Cryptographic Algorithm', 'Cryptographic Length', 'Name', 'State', 'Unique Identifier']),
    );
  });

  it('locates by name', () => {
    expect(ok(r, 'locate_by_name')).toEqual([ok(r, 'create_256')]);
  });

  it('activates, refuses to destroy an active key, revokes, destroys', () => {
    ok(r, 'activate');
    expect((ok(r, 'state_after_activate') as Record<string, unknown[]>)['State']).toEqual(['ACTIVE']);
    const denied = failed(r, 'destroy_active');
    expect(denied.reason).toBe(version === '2.0' ? 'WRONG_KEY_LIFECYCLE_STATE' : 'PERMISSION_DENIED');
    ok(r, 'revoke');
    expect((ok(r, 'state_after_revoke') as Record<string, unknown[]>)['State']).toEqual(['DEACTIVATED']);
    ok(r, 'destroy');
    expect((ok(r, 'state_after_destroy') as Record<string, unknown[]>)['State']).toEqual(['DESTROYED']);
    failed(r, 'get_destroyed');
  });

  it('registers a key and gets identical bytes back', () => {
    const uid = ok(r, 'register');
    expect(uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok(r, 'get_registered')).toBe(r.registered_material);
    expect(ok(r, 'locate_registered')).toEqual([uid]);
  });

  it('answers Item Not Found for an unknown id', () => {
    expect(failed(r, 'get_unknown').reason).toBe('ITEM_NOT_FOUND');
  });
});
