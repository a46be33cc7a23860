import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Hsm,
  HsmError,
  KEK_WRAP_MECHANISM,
  LEGACY_KEK_WRAP_MECHANISM,
  LEGACY_OBJECT_WRAP_MECHANISM,
  OBJECT_WRAP_MECHANISM,
  initSoftHsm,
  type AesKeyLength,
  type SoftHsmSetup,
  type WrappedKey,
} from '../../src/hsm/index.js';
import { makeTempDir, openProbe, removeDir, sharedWindows, type Probe } from './helpers.js';

const C = pkcs11js;

async function expectHsmError(p: Promise<unknown>, code: HsmError['code']): Promise<HsmError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HsmError);
  expect((err as HsmError).code).toBe(code);
  return err as HsmError;
}

function withBlob(w: WrappedKey, blob: Uint8Array): WrappedKey {
  return { rootKeyLabel: w.rootKeyLabel, mechanism: w.mechanism, blob };
}

describe('Hsm key protection (SoftHSM)', () => {
  let dir: string;
  let setup: SoftHsmSetup;
  let hsm: Hsm;
  let probe: Probe;

  beforeAll(async () => {
    dir = await makeTempDir();
    setup = await initSoftHsm(dir);
    hsm = await Hsm.open(setup.config);
    expect(await hsm.ensureRootKey()).toEqual({ created: true });
    probe = openProbe(setup.config);
  });

  afterAll(async () => {
    probe?.close();
    await hsm?.close();
    await removeDir(dir);
  });

  describe('root key', () => {
    it('ensureRootKey is idempotent', async () => {
      expect(await hsm.ensureRootKey()).toEqual({ created: false });
      expect(await hsm.ensureRootKey()).toEqual({ created: false });
      expect(await hsm.hasRootKey()).toBe(true);
      expect(await hsm.hasRootKey(setup.config.rootKeyLabel)).toBe(true);
      expect(await hsm.hasRootKey('no-such-root-key')).toBe(false);
      expect(probe.findSecretKeys([{ type: C.CKA_LABEL, value: setup.config.rootKeyLabel }])).toHaveLength(1);
    });

    it('is an AES-256 token key: sensitive, never extractable, derive only', () => {
      const [crk, ...others] = probe.findSecretKeys([{ type: C.CKA_LABEL, value: setup.config.rootKeyLabel }]);
      expect(others).toHaveLength(0);
      const attrs = probe.p11.C_GetAttributeValue(probe.session, crk!, [
        { type: C.CKA_TOKEN },
        { type: C.CKA_PRIVATE },
        { type: C.CKA_SENSITIVE },
        { type: C.CKA_EXTRACTABLE },
        { type: C.CKA_ALWAYS_SENSITIVE },
        { type: C.CKA_NEVER_EXTRACTABLE },
        { type: C.CKA_LOCAL },
        { type: C.CKA_MODIFIABLE },
        { type: C.CKA_DERIVE },
        { type: C.CKA_ENCRYPT },
        { type: C.CKA_DECRYPT },
        { type: C.CKA_WRAP },
        { type: C.CKA_UNWRAP },
        { type: C.CKA_SIGN },
        { type: C.CKA_VERIFY },
        { type: C.CKA_KEY_TYPE },
        { type: C.CKA_VALUE_LEN },
      ]);
      const bool = (t: number) => attrs.find((a) => a.type === t)!.value[0] === 1;
      const ulong = (t: number) => Number(attrs.find((a) => a.type === t)!.value.readBigUInt64LE());
      expect(bool(C.CKA_TOKEN)).toBe(true);
      expect(bool(C.CKA_PRIVATE)).toBe(true);
      expect(bool(C.CKA_SENSITIVE)).toBe(true);
      expect(bool(C.CKA_EXTRACTABLE)).toBe(false);
      expect(bool(C.CKA_ALWAYS_SENSITIVE)).toBe(true);
      expect(bool(C.CKA_NEVER_EXTRACTABLE)).toBe(true);
      expect(bool(C.CKA_LOCAL)).toBe(true); // generated inside the HSM
      expect(bool(C.CKA_MODIFIABLE)).toBe(false);
      expect(bool(C.CKA_DERIVE)).toBe(true);
      for (const t of [C.CKA_ENCRYPT, C.CKA_DECRYPT, C.CKA_WRAP, C.CKA_UNWRAP, C.CKA_SIGN, C.CKA_VERIFY]) {
        expect(bool(t)).toBe(false);
      }
      expect(ulong(C.CKA_KEY_TYPE)).toBe(C.CKK_AES);
      expect(ulong(C.CKA_VALUE_LEN)).toBe(32);
    });

    it('refuses to reveal CKA_VALUE', () => {
      const [crk] = probe.findSecretKeys([{ type: C.CKA_LABEL, value: setup.config.rootKeyLabel }]);
      expect(() => probe.p11.C_GetAttributeValue(probe.session, crk!, [{ type: C.CKA_VALUE }])).toThrow(
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    });

    it('cannot be made extractable or non-sensitive', () => {
      const [crk] = probe.findSecretKeys([{ type: C.CKA_LABEL, value: setup.config.rootKeyLabel }]);
      expect(() =>
        probe.p11.C_SetAttributeValue(probe.session, crk!, [{ type: C.CKA_EXTRACTABLE, value: true }]),
      ).toThrow(/CKR_/);
      expect(() =>
        probe.p11.C_SetAttributeValue(probe.session, crk!, [{ type: C.CKA_SENSITIVE, value: false }]),
      ).toThrow(/CKR_/);
    });
  });

  describe('generate / register / get', () => {
    it.each([128, 192, 256] as const)('generates AES-%i and unwraps it to that many bytes', async (bits: AesKeyLength) => {
      const wrapped = await hsm.generateWrappedKey(`obj-gen-${bits}`, bits);
      expect(wrapped.mechanism).toBe(KEK_WRAP_MECHANISM);
      expect(wrapped.rootKeyLabel).toBe(setup.config.rootKeyLabel);
      expect(wrapped.blob).toBeInstanceOf(Uint8Array);
      expect(wrapped.blob.length).toBe(bits / 8 + 28); // 12-byte IV + 16-byte GCM tag

      const a = await hsm.unwrapKey(`obj-gen-${bits}`, wrapped);
      const b = await hsm.unwrapKey(`obj-gen-${bits}`, wrapped);
      expect(a.length).toBe(bits / 8);
      expect(b.equals(a)).toBe(true);
      expect(a.equals(Buffer.alloc(a.length))).toBe(false);
      a.fill(0);
      b.fill(0);
    });

    it('generates different keys each time', async () => {
      const w1 = await hsm.generateWrappedKey('obj-diff', 256);
      const w2 = await hsm.generateWrappedKey('obj-diff', 256);
      expect(Buffer.from(w1.blob).equals(Buffer.from(w2.blob))).toBe(false);
      const k1 = await hsm.unwrapKey('obj-diff', w1);
      const k2 = await hsm.unwrapKey('obj-diff', w2);
      expect(k1.equals(k2)).toBe(false);
    });

    it('wraps each new key under an IV of its own that shares no bytes with the key', async () => {
      // The key and its IV come from one draw of the HSM's RNG: the IV (public, at the blob's start)
      // must be the draw's other part, never a view of the key's bytes.
      const ivs = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const w = await hsm.generateWrappedKey(`obj-iv-${i}`, 256);
        const iv = Buffer.from(w.blob.subarray(0, 12));
        ivs.add(iv.toString('hex'));
        const key = await hsm.unwrapKey(`obj-iv-${i}`, w);
        expect(key.includes(iv)).toBe(false);
        expect(iv.equals(Buffer.alloc(12))).toBe(false);
        key.fill(0);
      }
      expect(ivs.size).toBe(20);
    });

    it.each([16, 24, 32])('registers a %i-byte client key and gets the same bytes back', async (len) => {
      const key = Buffer.alloc(len);
      for (let i = 0; i < len; i++) key[i] = (i * 37 + len) & 0xff;
      const original = Buffer.from(key);
      const wrapped = await hsm.wrapPlaintextKey(`obj-reg-${len}`, key);
      expect(key.equals(original)).toBe(true); // the caller's buffer is the caller's to zero
      expect(wrapped.blob.length).toBe(len + 28);
      const back = await hsm.unwrapKey(`obj-reg-${len}`, wrapped);
      expect(back.equals(original)).toBe(true);
    });

    it('the blob does not contain the plaintext', async () => {
      for (const bits of [128, 192, 256] as const) {
        const wrapped = await hsm.generateWrappedKey('obj-noplain', bits);
        const key = await hsm.unwrapKey('obj-noplain', wrapped);
        expect(Buffer.from(wrapped.blob).includes(key)).toBe(false);
        expect(sharedWindows(wrapped.blob, key, 8)).toBe(0);
      }
      const chosen = Buffer.alloc(32, 0x41); // a very recognisable plaintext
      const wrapped = await hsm.wrapPlaintextKey('obj-noplain-2', chosen);
      expect(sharedWindows(wrapped.blob, chosen, 4)).toBe(0);
    });

    it('leaves no session objects behind but the one data key, which cannot leave the HSM', async () => {
      const sessionKeys = () => probe.findSecretKeys([{ type: C.CKA_TOKEN, value: false }]);
      const w = await hsm.generateWrappedKey('obj-clean', 256);
      await hsm.wrapPlaintextKey('obj-clean-2', Buffer.alloc(16, 7));
      await hsm.unwrapKey('obj-clean', w);
      await expectHsmError(hsm.unwrapKey('obj-other', w), 'UNWRAP_FAILED');
      const legacy = await hsm.generateWrappedKey('obj-clean-3', 128, { format: 'v1' });
      await hsm.unwrapKey('obj-clean-3', legacy);
      await hsm.rewrapKey('obj-clean-3', legacy, setup.config.rootKeyLabel);
      const [dk, ...others] = sessionKeys();
      expect(others).toHaveLength(0);
      const attrs = probe.p11.C_GetAttributeValue(probe.session, dk!, [
        { type: C.CKA_SENSITIVE },
        { type: C.CKA_EXTRACTABLE },
        { type: C.CKA_ENCRYPT },
        { type: C.CKA_DECRYPT },
        { type: C.CKA_WRAP },
        { type: C.CKA_UNWRAP },
        { type: C.CKA_DERIVE },
        { type: C.CKA_SIGN },
      ]);
      expect(attrs.map((a) => a.value[0])).toEqual([1, 0, 1, 1, 0, 0, 0, 0]);
      expect(() => probe.p11.C_GetAttributeValue(probe.session, dk!, [{ type: C.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
      // and no new token objects either: only the CRK lives on the token
      expect(probe.findSecretKeys([{ type: C.CKA_TOKEN, value: true }])).toHaveLength(1);
    });
  });

  describe('binding to the object id', () => {
    it('a blob wrapped for A does not unwrap as B', async () => {
      const wrapped = await hsm.generateWrappedKey('object-A', 256);
      const err = await expectHsmError(hsm.unwrapKey('object-B', wrapped), 'UNWRAP_FAILED');
      expect(err.pkcs11Code).toMatch(/^CKR_/);
      // near-identical ids too
      await expectHsmError(hsm.unwrapKey('object-A ', wrapped), 'UNWRAP_FAILED');
      await expectHsmError(hsm.unwrapKey('object-a', wrapped), 'UNWRAP_FAILED');
      // ...while A still works
      expect((await hsm.unwrapKey('object-A', wrapped)).length).toBe(32);
    });

    it('a registered key is bound the same way', async () => {
      const wrapped = await hsm.wrapPlaintextKey('reg-A', Buffer.alloc(32, 1));
      await expectHsmError(hsm.unwrapKey('reg-B', wrapped), 'UNWRAP_FAILED');
    });

    it('any tampering is detected', async () => {
      const wrapped = await hsm.generateWrappedKey('object-T', 192);
      for (let i = 0; i < wrapped.blob.length; i++) {
        const t = Uint8Array.from(wrapped.blob);
        t[i] = t[i]! ^ 0x01;
        await expectHsmError(hsm.unwrapKey('object-T', withBlob(wrapped, t)), 'UNWRAP_FAILED');
      }
      // truncated / extended / empty
      await expectHsmError(hsm.unwrapKey('object-T', withBlob(wrapped, wrapped.blob.subarray(0, 24))), 'UNWRAP_FAILED');
      await expectHsmError(
        hsm.unwrapKey('object-T', withBlob(wrapped, Buffer.concat([wrapped.blob, Buffer.alloc(8)]))),
        'UNWRAP_FAILED',
      );
      await expectHsmError(hsm.unwrapKey('object-T', withBlob(wrapped, new Uint8Array(0))), 'UNWRAP_FAILED');
      // the caller's blob was not modified by any of this
      expect((await hsm.unwrapKey('object-T', wrapped)).length).toBe(24);
    });

    it('a blob naming an unknown root key fails with ROOT_KEY_NOT_FOUND', async () => {
      const wrapped = await hsm.generateWrappedKey('object-R', 128);
      await expectHsmError(
        hsm.unwrapKey('object-R', { ...wrapped, rootKeyLabel: 'kmipd-crk-v999' }),
        'ROOT_KEY_NOT_FOUND',
      );
    });
  });

  describe('format v1 blobs (stored by earlier versions)', () => {
    it('still unwrap, stay bound to their id, and re-wrap as v2 with the same bytes', async () => {
      for (const bits of [128, 192, 256] as const) {
        const v1 = await hsm.generateWrappedKey(`legacy-${bits}`, bits, { format: 'v1' });
        expect(v1.mechanism).toBe(LEGACY_KEK_WRAP_MECHANISM);
        expect(v1.blob.length).toBe(bits / 8 + 8); // RFC 5649
        const key = await hsm.unwrapKey(`legacy-${bits}`, v1);
        expect(key.length).toBe(bits / 8);
        expect(createHash('sha256').update(key).digest().equals(Buffer.from(v1.digest))).toBe(true);
        await expectHsmError(hsm.unwrapKey(`legacy-other`, v1), 'UNWRAP_FAILED');
        // A v1 blob relabelled as v2 (or the reverse) is refused, not misread.
        await expectHsmError(hsm.unwrapKey(`legacy-${bits}`, { ...v1, mechanism: KEK_WRAP_MECHANISM }), 'UNWRAP_FAILED');
        const v2 = await hsm.rewrapKey(`legacy-${bits}`, v1, setup.config.rootKeyLabel);
        expect(v2.mechanism).toBe(KEK_WRAP_MECHANISM);
        expect((await hsm.unwrapKey(`legacy-${bits}`, v2)).equals(key)).toBe(true);
        await expectHsmError(hsm.unwrapKey(`legacy-${bits}`, { ...v2, mechanism: LEGACY_KEK_WRAP_MECHANISM }), 'UNWRAP_FAILED');
      }
    });

    it('generic secrets too', async () => {
      const secret = Buffer.from('a registered password, 37 bytes long');
      const v1 = await hsm.wrapSecretBytes('legacy-secret', secret, { format: 'v1' });
      expect(v1.mechanism).toBe(LEGACY_OBJECT_WRAP_MECHANISM);
      expect((await hsm.unwrapKey('legacy-secret', v1)).equals(secret)).toBe(true);
      const v2 = await hsm.rewrapKey('legacy-secret', v1, setup.config.rootKeyLabel);
      expect(v2.mechanism).toBe(OBJECT_WRAP_MECHANISM);
      expect((await hsm.unwrapKey('legacy-secret', v2)).equals(secret)).toBe(true);
      // the kind is bound too: a generic blob presented as an AES key does not open
      const asAes = await hsm.wrapSecretBytes('kind', Buffer.alloc(32, 9));
      await expectHsmError(hsm.unwrapKey('kind', { ...asAes, mechanism: KEK_WRAP_MECHANISM }), 'UNWRAP_FAILED');
    });
  });

  describe('input validation', () => {
    it('rejects bad arguments with INVALID_ARGUMENT', async () => {
      await expectHsmError(hsm.generateWrappedKey('x', 512 as AesKeyLength), 'INVALID_ARGUMENT');
      await expectHsmError(hsm.generateWrappedKey('', 256), 'INVALID_ARGUMENT');
      await expectHsmError(hsm.generateWrappedKey('bad\uD800id', 256), 'INVALID_ARGUMENT');
      await expectHsmError(hsm.wrapPlaintextKey('x', Buffer.alloc(17)), 'INVALID_ARGUMENT');
      await expectHsmError(hsm.wrapPlaintextKey('x', Buffer.alloc(0)), 'INVALID_ARGUMENT');
      const wrapped = await hsm.generateWrappedKey('x', 128);
      await expectHsmError(hsm.unwrapKey('x', { ...wrapped, mechanism: 'aes-kw-v0' }), 'INVALID_ARGUMENT');
    });
  });

  describe('concurrency and liveness', () => {
    it('serialises concurrent requests on the one session', async () => {
      const ids = Array.from({ length: 40 }, (_, i) => `conc-${i}`);
      const wrapped = await Promise.all(ids.map((id, i) => hsm.generateWrappedKey(id, ([128, 192, 256] as const)[i % 3]!)));
      const keys = await Promise.all(
        ids.map((id, i) => Promise.all([hsm.unwrapKey(id, wrapped[i]!), hsm.ping(), hsm.hasRootKey()])),
      );
      keys.forEach(([k], i) => expect(k.length).toBe([16, 24, 32][i % 3]));
      const wrong = await Promise.allSettled(ids.map((id, i) => hsm.unwrapKey(id, wrapped[(i + 1) % ids.length]!)));
      for (const r of wrong) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'UNWRAP_FAILED' });
      }
    });

    it('does not show the PIN when logged or serialised', () => {
      expect(inspect(hsm, { showHidden: true, depth: 10 })).not.toContain(setup.config.pin);
      expect(JSON.stringify(hsm)).not.toContain(setup.config.pin);
      expect(JSON.stringify({ ...hsm })).not.toContain(setup.config.pin);
    });

    it('ping works', async () => {
      await expect(hsm.ping()).resolves.toBeUndefined();
    });

    it('recovers once when the session is lost underneath it', async () => {
      const wrapped = await hsm.generateWrappedKey('obj-lost', 256);
      const before = await hsm.unwrapKey('obj-lost', wrapped);
      // Close every session of this application on the token (this also logs the token out).
      probe.p11.C_CloseAllSessions(probe.slot);
      expect(() => probe.p11.C_GetSessionInfo(probe.session)).toThrow(/CKR_SESSION_HANDLE_INVALID/);
      const after = await hsm.unwrapKey('obj-lost', wrapped);
      expect(after.equals(before)).toBe(true);

      probe.p11.C_CloseAllSessions(probe.slot);
      await expect(hsm.ping()).resolves.toBeUndefined();

      probe.p11.C_CloseAllSessions(probe.slot);
      expect((await hsm.generateWrappedKey('obj-lost-2', 128)).blob.length).toBe(44);
      probe = openProbe(setup.config);
    });
  });

  describe('several Hsm instances in one process', () => {
    it('share the module; a second one with an unknown root key label reports it; closing it keeps the first alive', async () => {
      const other = await Hsm.open({ ...setup.config, rootKeyLabel: 'kmipd-crk-v2' });
      expect(await other.hasRootKey()).toBe(false);
      expect(await other.hasRootKey(setup.config.rootKeyLabel)).toBe(true);
      await expectHsmError(other.generateWrappedKey('o', 256), 'ROOT_KEY_NOT_FOUND');
      // blobs record their root key, so `other` can still open blobs of the old root key
      const w = await hsm.generateWrappedKey('shared', 256);
      const viaOther = await other.unwrapKey('shared', w);
      await other.close();
      const viaFirst = await hsm.unwrapKey('shared', w);
      expect(viaFirst.equals(viaOther)).toBe(true);
      await expect(hsm.ping()).resolves.toBeUndefined();
    });

    it('a second instance with a wrong PIN is refused even though the token is logged in', async () => {
      await expectHsmError(Hsm.open({ ...setup.config, pin: 'wrong-pin' }), 'LOGIN_FAILED');
      await expect(hsm.ping()).resolves.toBeUndefined();
    });

    it('a second instance with a different env is refused while the module is initialised', async () => {
      await expectHsmError(
        Hsm.open({ ...setup.config, env: { SOFTHSM2_CONF: '/nonexistent/softhsm2.conf' } }),
        'MODULE_ERROR',
      );
      await expect(hsm.ping()).resolves.toBeUndefined();
    });
  });
});
