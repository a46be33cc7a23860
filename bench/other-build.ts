// The build `--compare` measures this checkout against: a folder that already holds a built
// kmipd, or a git revision of this repository, checked out into the run's scratch folder and
// built there. Each side runs its own bin/kmipd-serve and CLI; the load generator is this
// checkout's for both, so only the server differs.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OtherBuild {
  /** The folder whose bin/kmipd-serve and bin/kmipd.js are started. */
  readonly root: string;
  /** What the report calls it: the revision as given, or the folder, with its commit where it has one. */
  readonly label: string;
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

/**
 * npm in a process group of its own, so that stopping it stops what it started (npm runs tsc
 * through a shell: a build left running after an interrupted bench wrote dist/ files into the
 * worktree after it was removed). Rejects with the end of its stderr.
 */
function npmInGroup(args: readonly string[], cwd: string, running: Set<ChildProcess>): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('npm', args, { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    const stderr: string[] = [];
    child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (code === 0) resolvePromise();
      else reject(new Error(`npm ${args.join(' ')} ${signal ? `stopped by ${signal}` : `exited with ${code}`}:\n${stderr.join('').trim().split('\n').slice(-15).join('\n')}`));
    });
  });
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
export async function prepareOtherBuild(
  repoRoot: string,
  spec: string,
  scratch: string,
  log: (msg: string) => void,
  /** Told how to remove the worktree as soon as it exists: a run interrupted while it builds must still remove it. */
  onWorktree: (remove: () => void) => void = () => undefined,
): Promise<OtherBuild> {
  const asFolder = resolve(spec);
  if (existsSync(asFolder)) {
    if (!isBuiltCheckout(asFolder)) throw new Error(`--compare ${spec}: no built kmipd there (bin/kmipd-serve and dist/; run npm run build in it)`);
    const commit = await git(asFolder, 'rev-parse', '--short=12', 'HEAD').catch(() => undefined);
    return { root: asFolder, label: commit ? `${asFolder} (${commit})` : asFolder, remove: () => undefined };
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
  const building = new Set<ChildProcess>();
  const remove = () => {
    for (const child of building) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      execFileSync('git', ['worktree', 'remove', '--force', root], { cwd: repoRoot, stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  onWorktree(remove);
  try {
    if (installedTreeSatisfies(repoRoot, root)) {
      symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
    } else {
      log(`compare: ${spec} locks other dependencies than this checkout has installed; npm ci in its checkout`);
      await npmInGroup(['ci', '--no-audit', '--no-fund'], root, building);
    }
    log(`compare: building ${spec}`);
    await npmInGroup(['run', '--silent', 'build'], root, building);
    if (!isBuiltCheckout(root)) throw new Error('its build left no bin/kmipd-serve and dist/cli/main.js');
  } catch (err) {
    remove();
    throw new Error(`--compare ${spec}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { root, label: `${spec} (${commit.slice(0, 12)})`, remove };
}
