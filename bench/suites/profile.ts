// CPU profiles of kmipd under one workload at a time (node --cpu-prof on the server process),
// summarised into the functions and files that take the time. Keys are created by an unprofiled
// server first, so the profile holds only the workload.
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureLoad, type LoadFigures, type LoadSettings } from '../measure.js';
import { summarizeProfile, type ProfileSummary } from '../profile-summary.js';
import { seedKeys } from '../seed.js';
import { startKmipd } from '../targets.js';
import { needsKeys, type Workload } from '../workloads.js';

export interface ProfileConfig {
  readonly dir: string;
  readonly workloads: readonly Workload[];
  readonly load: LoadSettings;
  readonly seedKeys: number;
}

export interface ProfiledRun {
  readonly workload: string;
  readonly figures: LoadFigures;
  readonly profile: ProfileSummary;
}

export async function runProfiles(ctx: BenchContext, cfg: ProfileConfig): Promise<ProfiledRun[]> {
  const out: ProfiledRun[] = [];
  for (const w of cfg.workloads) {
    const { dir, client } = await freshKmipdData(ctx, `profile-${w.name}`);
    let keys: Awaited<ReturnType<typeof seedKeys>> = [];
    if (needsKeys(w)) {
      const seeder = await startKmipd(ctx, dir, client);
      try {
        keys = await seedKeys(seeder.endpoint, seeder.client, cfg.seedKeys);
      } finally {
        await seeder.stop();
      }
    }
    const profDir = join(cfg.dir, w.name);
    mkdirSync(profDir, { recursive: true });
    const before = new Set(readdirSync(profDir));
    const server = await startKmipd(ctx, dir, client, { cpuProfDir: profDir });
    let figures: LoadFigures;
    try {
      figures = await measureLoad(server, w, keys, cfg.load);
    } finally {
      await server.stop();
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
    if (!file) throw new Error(`no CPU profile written in ${profDir}`);
    const profile = summarizeProfile(join(profDir, file), ctx.root);
    ctx.log(`kmipd ${w.name} under --cpu-prof: ${figures.opsPerSec.toFixed(0)} ops/s; top: ${profile.byFunction.slice(0, 3).map((l) => `${l.what} ${(l.share * 100).toFixed(1)} %`).join('; ')}`);
    out.push({ workload: w.name, figures, profile });
  }
  return out;
}
