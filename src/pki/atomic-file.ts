import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { PkiError } from './errors.js';

export const KEY_FILE_MODE = 0o600;
export const CERT_FILE_MODE = 0o644;
export const PRIVATE_DIR_MODE = 0o700;

export interface AtomicWriteOptions {
  mode: number;
  /** Fail with PkiError('EXISTS') instead of replacing an existing file (checked atomically). */
  noClobber?: boolean;
}

/**
 * Write `data` to `path` so readers see either the old file or the complete new one.
 * The temp file lives in the same folder (rename/link must not cross filesystems) and is
 * created with O_EXCL and the final mode, so key bytes never sit in a more readable file
 * and a planted symlink at the temp name is never followed.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, opts.mode);
  let placed = false;
  try {
    try {
      // The umask may have narrowed (or, for certs, the caller wants exactly) the mode;
      // fix it while the file is still empty, i.e. before any secret is written.
      await fh.chmod(opts.mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.noClobber) {
      // link(2) fails with EEXIST instead of replacing: no check-then-write race.
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new PkiError('EXISTS', `refusing to overwrite existing file ${path}`);
        }
        throw err;
      }
      await unlink(tmp);
    } else {
      await rename(tmp, path);
    }
    placed = true;
    await syncDir(dir);
  } finally {
    if (!placed) await unlink(tmp).catch(() => undefined);
  }
}

/** Make the rename itself durable; best effort because some platforms cannot fsync a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const dh = await open(dir, constants.O_RDONLY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* not fatal: the data itself is already synced */
  }
}

/** True if something (file, dir, even a dangling symlink) occupies `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
