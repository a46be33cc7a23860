import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { writeFileAtomic } from '../../src/pki/atomic-file.js';
import { modeOf, removeTempDirs, tempDir, tempFilesIn } from './helpers.js';

afterAll(removeTempDirs);

describe('writeFileAtomic', () => {
  it('creates the file with the requested mode regardless of umask', async () => {
    const d = await tempDir();
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(join(d, 'a.crt'), 'cert', { mode: 0o644 });
    } finally {
      process.umask(old);
    }
    await writeFileAtomic(join(d, 'a.key'), 'key', { mode: 0o600 });
    expect(await modeOf(join(d, 'a.crt'))).toBe(0o644);
    expect(await modeOf(join(d, 'a.key'))).toBe(0o600);
    expect((await readdir(d)).sort()).toEqual(['a.crt', 'a.key']);
  });

  it('replaces an existing file (and a symlink itself, not its target)', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'target'), 'victim');
    await symlink(join(d, 'target'), join(d, 'x.key'));
    await writeFileAtomic(join(d, 'x.key'), 'new', { mode: 0o600 });
    expect(await readFile(join(d, 'x.key'), 'utf8')).toBe('new');
    expect(await readFile(join(d, 'target'), 'utf8')).toBe('victim');
    expect((await stat(join(d, 'x.key'))).isFile()).toBe(true);
  });

  it('noClobber refuses an existing path and leaves no temp file', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'k'), 'old');
    await expect(writeFileAtomic(join(d, 'k'), 'new', { mode: 0o600, noClobber: true })).rejects.toMatchObject({
      code: 'EXISTS',
    });
    expect(await readFile(join(d, 'k'), 'utf8')).toBe('old');
    expect(await tempFilesIn(d)).toEqual([]);
    await writeFileAtomic(join(d, 'fresh'), 'v', { mode: 0o600, noClobber: true });
    expect(await readFile(join(d, 'fresh'), 'utf8')).toBe('v');
    expect(await tempFilesIn(d)).toEqual([]);
  });

  it('cleans up its temp file when the final rename fails', async () => {
    const d = await tempDir();
    await mkdir(join(d, 'occupied'));
    await writeFile(join(d, 'occupied', 'f'), 'x'); // non-empty dir: rename over it fails
    await expect(writeFileAtomic(join(d, 'occupied'), 'data', { mode: 0o600 })).rejects.toThrow();
    expect(await tempFilesIn(d)).toEqual([]);
    expect((await stat(join(d, 'occupied'))).isDirectory()).toBe(true);
  });
});
