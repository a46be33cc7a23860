import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hsm, HsmError, initSoftHsm, type SoftHsmSetup, type WrappedKey } from '../../src/hsm/index.js';
import { makeTempDir, removeDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

async function hsmErrorOf(p: Promise<unknown>): Promise<HsmError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HsmError);
  return err as HsmError;
}

/** Unwrap in a fresh Node process (vite-node runs the TypeScript fixture). */
function unwrapInChild(
  hsmDir: string,
  objectId: string,
  w: WrappedKey,
): Promise<{ ok: boolean; sha256?: string; code?: string }> {
  const bin = path.join(repoRoot, 'node_modules', '.bin', 'vite-node');
  const child = spawn(bin, [path.join(here, 'fixtures', 'unwrap-child.ts')], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.end(
    JSON.stringify({
      hsmDir,
      objectId,
      rootKeyLabel: w.rootKeyLabel,
      mechanism: w.mechanism,
      blobHex: Buffer.from(w.blob).toString('hex'),
    }),
  );
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as { ok: boolean; sha256?: string; code?: string });
    });
  });
}

describe('Hsm lifecycle and failures (SoftHSM)', () => {
  let dir: string;
  let setup: SoftHsmSetup;

  beforeAll(async () => {
    dir = await makeTempDir();
    setup = await initSoftHsm(dir);
  });
  afterAll(async () => {
    await removeDir(dir);
  });

  it('a wrong PIN gives LOGIN_FAILED', async () => {
    const err = await hsmErrorOf(Hsm.open({ ...setup.config, pin: 'not-the-pin' }));
    expect(err.code).toBe('LOGIN_FAILED');
    expect(err.pkcs11Code).toBe('CKR_PIN_INCORRECT');
    expect(err.message).not.toContain('not-the-pin');
    expect(err.message).not.toContain(setup.config.pin);
  });

  it('a missing token label gives TOKEN_NOT_FOUND', async () => {
    const err = await hsmErrorOf(Hsm.open({ ...setup.config, tokenLabel: 'no-such-token' }));
    expect(err.code).toBe('TOKEN_NOT_FOUND');
  });

  it('a missing module gives MODULE_ERROR', async () => {
    const err = await hsmErrorOf(Hsm.open({ ...setup.config, modulePath: path.join(dir, 'nope.so') }));
    expect(err.code).toBe('MODULE_ERROR');
  });

  it('a bad config gives INVALID_ARGUMENT', async () => {
    expect((await hsmErrorOf(Hsm.open({ ...setup.config, pin: '' }))).code).toBe('INVALID_ARGUMENT');
    expect((await hsmErrorOf(Hsm.open({ ...setup.config, tokenLabel: 'x'.repeat(33) }))).code).toBe('INVALID_ARGUMENT');
  });

  it('after a failed open the module is usable again', async () => {
    const hsm = await Hsm.open(setup.config);
    await hsm.ping();
    await hsm.close();
  });

  it('old blobs still unwrap after close + open (C_Finalize / C_Initialize) and in another process', async () => {
    let hsm = await Hsm.open(setup.config);
    await hsm.ensureRootKey();
    const wrapped = await hsm.generateWrappedKey('persist-1', 256);
    const registered = await hsm.wrapPlaintextKey('persist-2', Buffer.alloc(16, 0x5a));
    const key = await hsm.unwrapKey('persist-1', wrapped);
    await hsm.close();

    hsm = await Hsm.open(setup.config);
    try {
      expect(await hsm.ensureRootKey()).toEqual({ created: false });
      expect((await hsm.unwrapKey('persist-1', wrapped)).equals(key)).toBe(true);
      expect((await hsm.unwrapKey('persist-2', registered)).equals(Buffer.alloc(16, 0x5a))).toBe(true);
    } finally {
      await hsm.close();
    }

    const child = await unwrapInChild(dir, 'persist-1', wrapped);
    expect(child).toEqual({ ok: true, sha256: createHash('sha256').update(key).digest('hex') });
    const childWrongId = await unwrapInChild(dir, 'persist-2', wrapped);
    expect(childWrongId).toEqual({ ok: false, code: 'UNWRAP_FAILED' });
  });

  it('close is idempotent, waits for queued work, and later calls fail with CLOSED', async () => {
    const hsm = await Hsm.open(setup.config);
    await hsm.ensureRootKey();
    const pending = hsm.generateWrappedKey('queued', 128);
    const closed = hsm.close();
    await expect(pending).resolves.toMatchObject({ mechanism: 'aes-gcm-v2' });
    await closed;
    await hsm.close();
    expect((await hsmErrorOf(hsm.ping())).code).toBe('CLOSED');
    expect((await hsmErrorOf(hsm.generateWrappedKey('late', 128))).code).toBe('CLOSED');
  });

  it('wrapping needs the root key: ROOT_KEY_NOT_FOUND before ensureRootKey', async () => {
    const hsm = await Hsm.open({ ...setup.config, rootKeyLabel: 'never-created' });
    try {
      expect((await hsmErrorOf(hsm.generateWrappedKey('a', 256))).code).toBe('ROOT_KEY_NOT_FOUND');
      expect((await hsmErrorOf(hsm.wrapPlaintextKey('a', Buffer.alloc(32)))).code).toBe('ROOT_KEY_NOT_FOUND');
    } finally {
      await hsm.close();
    }
  });
});
