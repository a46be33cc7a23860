// Wrapping arbitrary secret bytes (registered secret data, private keys, whole objects) on a real
// SoftHSM token: any length round-trips, the blob stays bound to its object id, holds no
// plaintext, and survives root key rotation.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hsm, HsmError, initSoftHsm, MAX_OBJECT_SECRET_BYTES, OBJECT_WRAP_MECHANISM, type SoftHsmSetup } from '../../src/hsm/index.js';
import { makeTempDir, removeDir, sharedWindows } from './helpers.js';

let dir: string;
let setup: SoftHsmSetup;
let hsm: Hsm;

beforeAll(async () => {
  dir = await makeTempDir();
  setup = await initSoftHsm(dir);
  hsm = await Hsm.open({ ...setup.config, rootKeyLabel: 'crk-a' });
  await hsm.ensureRootKey();
  const b = await Hsm.open({ ...setup.config, rootKeyLabel: 'crk-b' });
  await b.ensureRootKey();
  await b.close();
});
afterAll(async () => {
  await hsm?.close();
  await removeDir(dir);
});

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof HsmError ? e.code : String(e)));

describe('Hsm.wrapSecretBytes', () => {
  it.each([1, 8, 17, 100, 1218, 4096])('round-trips %i bytes', async (n) => {
    const secret = randomBytes(n);
    const w = await hsm.wrapSecretBytes('obj-' + n, secret);
    expect(w.mechanism).toBe(OBJECT_WRAP_MECHANISM);
    if (n >= 8) expect(sharedWindows(w.blob, secret)).toBe(0); // no 8-byte run of the secret in the blob
    const back = await hsm.unwrapKey('obj-' + n, w);
    expect(back.equals(secret)).toBe(true);
  });

  it('binds the blob to its object id and refuses tampering', async () => {
    const w = await hsm.wrapSecretBytes('owner', Buffer.from('password'));
    expect(await code(hsm.unwrapKey('someone-else', w))).toBe('UNWRAP_FAILED');
    const bad = Buffer.from(w.blob);
    bad[3]! ^= 1;
    expect(await code(hsm.unwrapKey('owner', { ...w, blob: bad }))).toBe('UNWRAP_FAILED');
  });

  it('refuses empty or oversized secrets', async () => {
    expect(await code(hsm.wrapSecretBytes('x', Buffer.alloc(0)))).toBe('INVALID_ARGUMENT');
    expect(await code(hsm.wrapSecretBytes('x', Buffer.alloc(MAX_OBJECT_SECRET_BYTES + 1)))).toBe('INVALID_ARGUMENT');
  });

  it('re-wraps under another root key inside the HSM, keeping the bytes', async () => {
    const secret = randomBytes(300);
    const w = await hsm.wrapSecretBytes('rotated', secret);
    const moved = await hsm.rewrapKey('rotated', w, 'crk-b');
    expect(moved.rootKeyLabel).toBe('crk-b');
    expect(moved.mechanism).toBe(OBJECT_WRAP_MECHANISM);
    expect((await hsm.unwrapKey('rotated', moved)).equals(secret)).toBe(true);
  });
});
