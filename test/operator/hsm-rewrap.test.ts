// The HSM side of root key rotation, on a real SoftHSM token: re-wrapping is done by the HSM,
// keeps a key bound to its object id, leaves no key object behind, and new wraps follow the root
// key the store names.
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hsm, HsmError, initSoftHsm, type SoftHsmSetup } from '../../src/hsm/index.js';
import { makeTempDir, openProbe, removeDir, type Probe } from '../hsm/helpers.js';

let dir: string;
let setup: SoftHsmSetup;
let hsm: Hsm;
let probe: Probe;
let active = 'crk-v1';

beforeAll(async () => {
  dir = await makeTempDir();
  setup = await initSoftHsm(dir);
  hsm = await Hsm.open({ ...setup.config, rootKeyLabel: 'crk-v1', activeRootKeyLabel: () => active });
  await hsm.ensureRootKey();
  const v2 = await Hsm.open({ ...setup.config, rootKeyLabel: 'crk-v2' });
  await v2.ensureRootKey();
  await v2.close();
  probe = openProbe(setup.config);
});

afterAll(async () => {
  probe?.close();
  await hsm?.close();
  await removeDir(dir);
});

async function failureCode(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e instanceof HsmError ? e.code : String(e)),
  );
}

describe('Hsm.rewrapKey', () => {
  it('moves a key to the new root key with the same bytes and a different blob', async () => {
    const plain = randomBytes(32);
    const old = await hsm.wrapPlaintextKey('obj-1', plain);
    expect(old.rootKeyLabel).toBe('crk-v1');
    const fresh = await hsm.rewrapKey('obj-1', old, 'crk-v2');
    expect(fresh.rootKeyLabel).toBe('crk-v2');
    expect(fresh.mechanism).toBe(old.mechanism);
    expect(Buffer.from(fresh.blob).equals(Buffer.from(old.blob))).toBe(false);
    const back = await hsm.unwrapKey('obj-1', fresh);
    expect(back.equals(plain)).toBe(true);
    back.fill(0);
    // The old blob still opens under the old root key until that is retired (servers keep serving).
    const stillOld = await hsm.unwrapKey('obj-1', old);
    expect(stillOld.equals(plain)).toBe(true);
    stillOld.fill(0);
  });

  it('keeps the binding to the object id, and refuses altered blobs', async () => {
    const w = await hsm.generateWrappedKey('obj-2', 256);
    expect(await failureCode(hsm.rewrapKey('obj-3', w, 'crk-v2'))).toBe('UNWRAP_FAILED');
    const bent = Buffer.from(w.blob);
    bent[5]! ^= 1;
    expect(await failureCode(hsm.rewrapKey('obj-2', { ...w, blob: bent }, 'crk-v2'))).toBe('UNWRAP_FAILED');
    expect(await failureCode(hsm.rewrapKey('obj-2', w, 'crk-missing'))).toBe('ROOT_KEY_NOT_FOUND');
  });

  it('leaves no key object in the session afterwards but the two root keys\' data keys, which cannot leave the HSM', async () => {
    const w = await hsm.generateWrappedKey('obj-4', 128);
    await hsm.rewrapKey('obj-4', w, 'crk-v2');
    const legacy = await hsm.generateWrappedKey('obj-4b', 128, { format: 'v1' });
    await hsm.rewrapKey('obj-4b', legacy, 'crk-v2');
    const left = probe.findSecretKeys([{ type: pkcs11js.CKA_TOKEN, value: false }]);
    expect(left).toHaveLength(2);
    for (const h of left) {
      const [sensitive, extractable, wrap] = probe.p11.C_GetAttributeValue(probe.session, h, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_WRAP },
      ]);
      expect([sensitive!.value[0], extractable!.value[0], wrap!.value[0]]).toEqual([1, 0, 0]);
    }
  });

  it('wraps new keys under the root key the store names, switching without a reopen', async () => {
    expect((await hsm.generateWrappedKey('obj-5', 256)).rootKeyLabel).toBe('crk-v1');
    active = 'crk-v2';
    expect((await hsm.generateWrappedKey('obj-6', 256)).rootKeyLabel).toBe('crk-v2');
    expect((await hsm.wrapPlaintextKey('obj-7', randomBytes(16))).rootKeyLabel).toBe('crk-v2');
  });
});
