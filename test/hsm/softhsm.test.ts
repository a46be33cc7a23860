import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SOFTHSM_MODULE, Hsm, HsmError, initSoftHsm, loadSoftHsm } from '../../src/hsm/index.js';
import { makeTempDir, removeDir } from './helpers.js';

async function tokenDirs(tokenDir: string): Promise<string[]> {
  return (await readdir(tokenDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
}

describe('initSoftHsm / loadSoftHsm', () => {
  let root: string;

  beforeAll(async () => {
    root = await makeTempDir('kmipd-softhsm-');
  });
  afterAll(async () => {
    await removeDir(root);
  });

  it('picks an existing default module', () => {
    expect(existsSync(DEFAULT_SOFTHSM_MODULE)).toBe(true);
  });

  it('is idempotent: same config and PINs, token initialised once', async () => {
    const dir = path.join(root, 'a');
    const first = await initSoftHsm(dir);
    const tokensAfterFirst = await tokenDirs(first.tokenDir);
    expect(tokensAfterFirst).toHaveLength(1);
    const tokenObject = path.join(first.tokenDir, tokensAfterFirst[0]!, 'token.object');
    const tokenStat1 = await stat(tokenObject);
    const pinsBefore = await readFile(first.pinFile, 'utf8');
    const confBefore = await readFile(first.confPath, 'utf8');

    const second = await initSoftHsm(dir);
    expect(second).toEqual(first);
    expect(await readFile(second.pinFile, 'utf8')).toBe(pinsBefore);
    expect(await readFile(second.confPath, 'utf8')).toBe(confBefore);
    expect(await tokenDirs(second.tokenDir)).toEqual(tokensAfterFirst);
    const tokenStat2 = await stat(tokenObject);
    expect(tokenStat2.mtimeMs).toBe(tokenStat1.mtimeMs);
    expect(tokenStat2.size).toBe(tokenStat1.size);

    const pins = JSON.parse(pinsBefore) as { so_pin: string; user_pin: string };
    expect(pins.user_pin).toMatch(/^[0-9a-f]{32}$/);
    expect(pins.so_pin).toMatch(/^[0-9a-f]{32}$/);
    expect(pins.so_pin).not.toBe(pins.user_pin);
    expect(first.config.pin).toBe(pins.user_pin);
  });

  it('writes the PIN file 0600 and the token dir 0700', async () => {
    const setup = await initSoftHsm(path.join(root, 'a'));
    expect((await stat(setup.pinFile)).mode & 0o777).toBe(0o600);
    expect((await stat(setup.tokenDir)).mode & 0o777).toBe(0o700);
  });

  it('points the config into the given folder', async () => {
    const dir = path.join(root, 'a');
    const setup = await initSoftHsm(dir);
    expect(setup.confPath).toBe(path.join(dir, 'softhsm2.conf'));
    expect(setup.tokenDir).toBe(path.join(dir, 'tokens'));
    expect(setup.pinFile).toBe(path.join(dir, 'pins.json'));
    expect(setup.config.env).toEqual({ SOFTHSM2_CONF: setup.confPath });
    expect(setup.config.modulePath).toBe(DEFAULT_SOFTHSM_MODULE);
    const conf = await readFile(setup.confPath, 'utf8');
    expect(conf).toContain(`directories.tokendir = ${setup.tokenDir}\n`);
    expect(conf).toContain('objectstore.backend = file\n');
    expect(conf).toContain('log.level = ERROR\n');
  });

  it('loadSoftHsm returns the same setup', async () => {
    const dir = path.join(root, 'a');
    expect(await loadSoftHsm(dir)).toEqual(await initSoftHsm(dir));
  });

  it('loadSoftHsm throws when nothing was initialised', async () => {
    await expect(loadSoftHsm(path.join(root, 'missing'))).rejects.toMatchObject({
      name: 'HsmError',
      code: 'TOKEN_NOT_FOUND',
    });
  });

  it('honours a custom token label and refuses a different one later', async () => {
    const dir = path.join(root, 'b');
    const setup = await initSoftHsm(dir, { tokenLabel: 'custom token' });
    expect(setup.config.tokenLabel).toBe('custom token');
    expect((await initSoftHsm(dir)).config.tokenLabel).toBe('custom token');
    await expect(initSoftHsm(dir, { tokenLabel: 'other' })).rejects.toBeInstanceOf(HsmError);
    expect(await tokenDirs(setup.tokenDir)).toHaveLength(1);
  });

  it('produces a token the Hsm can log into', async () => {
    const setup = await initSoftHsm(path.join(root, 'a'));
    const hsm = await Hsm.open(setup.config);
    try {
      await hsm.ping();
    } finally {
      await hsm.close();
    }
  });
});
