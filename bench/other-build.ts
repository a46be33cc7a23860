// The build `--compare` measures this checkout against: a folder that already holds a built
// kmipd, or a git revision of this repository, checked out into the run's scratch folder and
// built there. Each side runs its own bin/kmipd-serve and CLI; the load generator is this
// checkout's for both, so only the server differs.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OtherBuild {
  /** The folder whose bin/kmipd-serve and bin/kmipd.js are started. */
  readonly root: string;
  /** What the report calls it: the revision as given (with its commit), or the folder. */
  readonly label: string;
  /** Its commit, when it is a git checkout. */
  readonly commit: string | undefined;
  /** Removes what prepareOtherBuild made (a worktree); nothing for a folder given. Synchronous: an interrupted run calls it on its way out. */
  remove(): void;
}

interface Lockfile {
  readonly packages?: Record<string, { readonly version?: string; readonly optional?: boolean; readonly link?: boolean }>;
}

/**
 * Whether this checkout's node_modules is what `npm ci` would install from `other`'s lockfile
 * here: every package it locks at the version installed, except optional ones this platform
 * does not install (another platform's builds). Then the other build can use it as it is.
 */
export function installedTreeSatisfies(repoRoot: string, other: string): boolean {
  const lockPath = join(other, 'package-lock.json');
  if (!existsSync(lockPath)) return false;
  const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as Lockfile;
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (path === '' || entry.link) continue;
    const manifest = join(repoRoot, path, 'package.json');
    if (!existsSync(manifest)) {
      if (entry.optional) continue;
      return false;
    }
    if ((JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version !== entry.version) return false;
  }
  return true;
}

/** Whether `dir` holds a kmipd that can be started (bin/kmipd-serve, and dist/ built). */
export function isBuiltCheckout(dir: string): boolean {
  return existsSync(join(dir, 'bin/kmipd-serve')) && existsSync(join(dir, 'dist/cli/main.js'));
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, maxBuffer: 16 << 20 });
  return stdout.trim();
}

/** This checkout's commit, with "+changes" when its tracked files differ from it. */
export async function describeCheckout(repoRoot: string): Promise<string> {
  try {
    const commit = await git(repoRoot, 'rev-parse', '--short=12', 'HEAD');
    const dirty = (await git(repoRoot, 'status', '--porcelain', '--untracked-files=no')) !== '';
    return dirty ? `${commit}+changes` : commit;
  } catch {
    return 'not a git checkout';
  }
}

/**
 * `spec` is a folder holding a built kmipd (used as it is), or a git revision of the repository
 * at `repoRoot`: that revision is checked out as a detached worktree under `scratch` and built
 * with its own build script. Its node_modules is this checkout's when that holds what its
 * lockfile asks for (a link: no install), else installed with `npm ci`.
 */
export async function prepareOtherBuild(repoRoot: string, spec: string, scratch: string, log: (msg: string) => void): Promise<OtherBuild> {
  const asFolder = resolve(spec);
  if (existsSync(asFolder)) {
    if (!isBuiltCheckout(asFolder)) throw new Error(`--compare ${spec}: no built kmipd there (bin/kmipd-serve and dist/; run npm run build in it)`);
    let commit: string | undefined;
    try {
      commit = await git(asFolder, 'rev-parse', '--short=12', 'HEAD');
    } catch {
      commit = undefined;
    }
    return { root: asFolder, label: asFolder, commit, remove: () => undefined };
  }
  let commit: string;
  try {
    commit = await git(repoRoot, 'rev-parse', '--verify', '--quiet', `${spec}^{commit}`);
  } catch {
    throw new Error(`--compare ${spec}: neither a folder nor a git revision of ${repoRoot}`);
  }
  const root = join(scratch, `compare-${commit.slice(0, 12)}`);
  log(`compare: checking out ${spec} (${commit.slice(0, 12)}) into ${root}`);
  await git(repoRoot, 'worktree', 'add', '--detach', '--quiet', root, commit);
  const remove = () => {
    try {
      execFileSync('git', ['worktree', 'remove', '--force', root], { cwd: repoRoot, stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  try {
    if (installedTreeSatisfies(repoRoot, root)) {
      symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
    } else {
      log(`compare: ${spec} locks other dependencies than this checkout has installed; npm ci in its checkout`);
      await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, maxBuffer: 64 << 20 }).catch((err: { stderr?: string }) => {
        throw new Error(`--compare ${spec}: npm ci failed in its checkout:\n${(err.stderr ?? String(err)).trim().split('\n').slice(-15).join('\n')}`);
      });
    }
    log(`compare: building ${spec}`);
    await run('npm', ['run', '--silent', 'build'], { cwd: root, maxBuffer: 64 << 20 });
    if (!isBuiltCheckout(root)) throw new Error(`--compare ${spec}: its build left no bin/kmipd-serve and dist/cli/main.js`);
  } catch (err) {
    remove();
    throw err;
  }
  return { root, label: `${spec} (${commit.slice(0, 12)})`, commit: commit.slice(0, 12), remove };
}
