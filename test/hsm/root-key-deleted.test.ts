// Crypto-shredding at the root: once the root key is deleted in the HSM, the keys it wraps cannot
// be opened or made any more, even by an Hsm that had been using it (it holds a data key derived
// from the root key, and derives it again every second).
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Hsm, HsmError, initSoftHsm, type SoftHsmSetup } from '../../src/hsm/index.js';
import { makeTempDir, openProbe, removeDir } from './helpers.js';

let dir: string;
let setup: SoftHsmSetup;
let hsm: Hsm;

beforeAll(async () => {
  dir = await makeTempDir();
  setup = await initSoftHsm(dir);
  hsm = await Hsm.open({ ...setup.config, rootKeyLabel: 'doomed-crk' });
  await hsm.ensureRootKey();
});
afterAll(async () => {
  await hsm?.close();
  await removeDir(dir);
});

const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof HsmError ? e.code : String(e)));

it('a deleted root key stops unwrapping and wrapping within a few seconds', async () => {
  const w = await hsm.generateWrappedKey('k1', 256);
  expect(await outcome(hsm.unwrapKey('k1', w))).toBe('ok');
  const probe = openProbe(setup.config);
  try {
    const [crk] = probe.findSecretKeys([{ type: pkcs11js.CKA_LABEL, value: 'doomed-crk' }]);
    probe.p11.C_DestroyObject(probe.session, crk!);
  } finally {
    probe.close();
  }
  const deadline = Date.now() + 3000;
  let last = 'ok';
  while (last === 'ok' && Date.now() < deadline) {
    last = await outcome(hsm.unwrapKey('k1', w));
    if (last === 'ok') await new Promise((r) => setTimeout(r, 100));
  }
  expect(last).toBe('ROOT_KEY_NOT_FOUND');
  expect(await outcome(hsm.generateWrappedKey('k2', 256))).toBe('ROOT_KEY_NOT_FOUND');
});
