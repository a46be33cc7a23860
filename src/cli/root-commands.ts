// `kmipd root …`: customer root key rotation.
//
// rotate: a new root key version is created in the HSM and recorded in the store as active, so every
// node wraps new keys under it at once; the previous version turns "retiring". Then every wrapped
// key still under an older version is re-wrapped (decrypted and encrypted again by the HSM, zeroed
// here in between; see src/hsm/key-protector.ts) and
// swapped in with a compare-and-swap, in batches, while servers keep serving (they unwrap each key
// with the root key its row names, old or new). The old version is retired only when no wrapped key
// depends on it. Each swap is its own transaction: killed half-way, a rerun of `root rotate` resumes
// where it stopped and nothing is lost. The retired root key stays in the HSM (backups taken before
// the rotation need it); deleting it there is a deliberate HSM-side decision.
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HsmError, type Hsm } from '../hsm/index.js';
import type { RootKeyVersion } from '../store/root-keys.js';
import { addStoreOptions, openDataHsm, storeTarget, withOperatorStore, type OperatorStore, type StoreOpts } from './data-folder.js';
import { audited } from './operator-audit.js';
import { nonNegativeInt, positiveInt, printJson, table, when } from './format.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');
const LABEL = /^[A-Za-z0-9._-]{1,64}$/;

/** Errors that make one key impossible to re-wrap (it was unusable already); others stop the run. */
const PER_KEY_FAILURES: ReadonlySet<string> = new Set(['UNWRAP_FAILED', 'INVALID_ARGUMENT', 'ROOT_KEY_NOT_FOUND']);

export function nextRootKeyLabel(current: string, used: ReadonlySet<string>): string {
  const m = /^(.*-v)(\d+)$/.exec(current);
  const base = m ? m[1]! : `${current}-v`;
  let n = m ? Number(m[2]) + 1 : 2;
  while (used.has(`${base}${n}`)) n += 1;
  return `${base}${n}`;
}

export interface RotationResult {
  readonly target: string;
  readonly rewrapped: number;
  readonly failed: readonly string[];
  readonly retired: readonly string[];
}

/** Re-wraps everything not under the active root key, then retires what nothing depends on. */
export async function completeRotation(
  s: OperatorStore,
  hsm: Hsm,
  o: { batch: number; paceMs: number; progress: (done: number, remaining: number) => void },
): Promise<RotationResult> {
  const target = await s.rootKeys.activeLabel();
  if (!target) throw new Error('no active root key recorded');
  const failed = new Map<string, string>();
  let rewrapped = 0;
  const retired: string[] = [];
  for (;;) {
    let cursor: string | undefined;
    for (;;) {
      const batch = await s.rootKeys.pending(target, o.batch, cursor);
      if (batch.length === 0) break;
      for (const row of batch) {
        cursor = row.id;
        if (failed.has(row.id)) continue;
        try {
          const fresh = await hsm.rewrapKey(row.id, row, target);
          // False if the key was destroyed or changed meanwhile: then there is nothing to keep.
          if (await s.rootKeys.swap(row, fresh)) rewrapped += 1;
        } catch (err) {
          if (!(err instanceof HsmError) || !PER_KEY_FAILURES.has(err.code)) throw err;
          failed.set(row.id, err.message);
        }
      }
      const remaining = [...(await s.rootKeys.wrappedCounts())].filter(([l]) => l !== target).reduce((n, [, c]) => n + c, 0);
      o.progress(rewrapped, remaining);
      if (o.paceMs > 0) await sleep(o.paceMs);
    }
    for (const v of (await s.rootKeys.versions()).filter((x) => x.state === 'retiring')) {
      if (await s.rootKeys.tryRetire(v.label)) retired.push(v.label);
    }
    // Keys wrapped under an old version after our pass began (a server that read the active label
    // just before the switch) are picked up by another pass; keys that cannot be re-wrapped stop it.
    const left = await s.rootKeys.pending(target, failed.size + 1);
    if (left.every((r) => failed.has(r.id))) break;
  }
  return { target, rewrapped, failed: [...failed.keys()], retired };
}

async function rotate(o: { data: string; label?: string | undefined; existingRootKey: boolean; batch: number; paceMs: number } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), async (s) => {
    const versions = await s.rootKeys.versions();
    const active = (await s.rootKeys.activeLabel())!;
    let target: string;
    const resuming = versions.some((v) => v.state === 'retiring');
    if (resuming) {
      target = active;
      if (o.label !== undefined && o.label !== target) {
        throw new Error(`a rotation to ${target} is in progress; run \`kmipd root rotate\` without --label to finish it first`);
      }
      console.error(`resuming the rotation to root key ${target}`);
    } else {
      target = o.label ?? nextRootKeyLabel(active, new Set(versions.map((v) => v.label)));
      if (!LABEL.test(target)) throw new Error(`invalid root key label ${JSON.stringify(target)}: 1-64 characters from A-Z a-z 0-9 . _ -`);
    }
    const hsm = await openDataHsm(o.data, s.config, target);
    try {
      if (!resuming) {
        await audited(o.data, { operation: 'root rotate', detail: { from: active, to: target, phase: 'begin' } }, async () => {
          if (o.existingRootKey) {
            if (!(await hsm.hasRootKey(target))) throw new Error(`root key ${target} not found in the HSM`);
          } else {
            // Idempotent: a key left by an interrupted earlier attempt is checked and adopted.
            const { created } = await hsm.ensureRootKey();
            console.error(created ? `generated root key ${target} in the HSM` : `root key ${target} already in the HSM`);
          }
          await s.rootKeys.beginRotation(target);
          console.error(`root key ${target} is now active: new keys are wrapped under it; re-wrapping the others`);
        });
      } else if (!(await hsm.hasRootKey(target))) {
        throw new Error(`root key ${target} is recorded as active but is not in the HSM`);
      }
      let lastReport = 0;
      const result = await audited(
        o.data,
        () => ({ operation: 'root rotate', detail: { to: target, phase: 'rewrap' } }),
        () =>
          completeRotation(s, hsm, {
            batch: o.batch,
            paceMs: o.paceMs,
            progress: (done, remaining) => {
              if (Date.now() - lastReport < 1000 && remaining > 0) return;
              lastReport = Date.now();
              console.error(`re-wrapped ${done}, ${remaining} to go`);
            },
          }),
      );
      console.log(`root key ${result.target} active; ${result.rewrapped} key(s) re-wrapped${result.retired.length ? `; retired ${result.retired.join(', ')}` : ''}`);
      if (result.failed.length > 0) {
        process.exitCode = 1;
        console.error(
          `${result.failed.length} key(s) could not be re-wrapped (their wrapped form does not open: altered or foreign): ${result.failed.join(', ')}`,
        );
        console.error('the previous root key stays in use for them and is not retired');
      }
    } finally {
      await hsm.close();
    }
  });
}

async function statusView(s: OperatorStore): Promise<{ versions: RootKeyVersion[]; active: string; inProgress: boolean; rewrapped: number; total: number; unknownLabels: Record<string, number> }> {
  const versions = await s.rootKeys.versions();
  const counts = await s.rootKeys.wrappedCounts();
  const active = (await s.rootKeys.activeLabel())!;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const known = new Set(versions.map((v) => v.label));
  return {
    versions,
    active,
    inProgress: versions.some((v) => v.state === 'retiring'),
    rewrapped: counts.get(active) ?? 0,
    total,
    unknownLabels: Object.fromEntries([...counts].filter(([l]) => !known.has(l))),
  };
}

async function status(o: { data: string; json: boolean } & StoreOpts): Promise<void> {
  await withOperatorStore(storeTarget(o.data, o), async (s) => {
    const v = await statusView(s);
    if (o.json) return printJson(v);
    console.log(
      table(
        ['VERSION', 'LABEL', 'STATE', 'CREATED', 'RETIRED', 'WRAPPED KEYS'],
        v.versions.map((r) => [String(r.version), r.label, r.state, when(r.createdAt), when(r.retiredAt), String(r.wrappedKeys)]),
      ),
    );
    if (v.inProgress) {
      const pct = v.total === 0 ? 100 : Math.floor((v.rewrapped * 100) / v.total);
      console.log(`rotation in progress: ${v.rewrapped} of ${v.total} wrapped keys under ${v.active} (${pct}%); run \`kmipd root rotate\` to finish it`);
    } else console.log(`no rotation in progress; active root key ${v.active}`);
    for (const [label, n] of Object.entries(v.unknownLabels)) console.log(`warning: ${n} key(s) wrapped under ${label}, which this store has no record of`);
  });
}

export function registerRootCommands(program: Command): void {
  const root = program.command('root').description('customer root key (in the HSM): rotation and status');
  root
    .command('rotate')
    .description('new root key version; re-wrap every key under it while serving; retire the old one when nothing depends on it (rerun to resume)')
    .addOption(dataOption())
    .option('--label <label>', 'CKA_LABEL of the new root key (default: the next -vN)')
    .option('--existing-root-key', 'the new root key must already exist in the HSM (key ceremony); never generate one', false)
    .addOption(new Option('--batch <n>', 'keys re-wrapped per batch').argParser(positiveInt('--batch', 10000)).default(100))
    .addOption(new Option('--pace <ms>', 'pause between batches, to leave the HSM to the servers').argParser(nonNegativeInt('--pace')).default(0))
    .action((o) => rotate({ ...storeTarget(resolve(o.data), o), label: o.label, existingRootKey: o.existingRootKey, batch: o.batch, paceMs: o.pace }));
  root
    .command('status')
    .description('root key versions, how many keys each wraps, and rotation progress')
    .addOption(dataOption())
    .option('--json', 'JSON', false)
    .action((o) => status({ ...storeTarget(resolve(o.data), o), json: o.json }));
  for (const sub of root.commands) addStoreOptions(sub);
}
