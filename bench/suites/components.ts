// The cost of a request's building blocks, measured one call at a time in a process of their own
// (see bench/components.ts), on a data folder whose template key the server created.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshKmipdData, type BenchContext } from '../context.js';
import { seedKeys } from '../seed.js';
import { startKmipd } from '../targets.js';
import { BENCH_DIR, VITE_NODE } from '../worker-group.js';
import type { ComponentCost } from '../components.js';

const run = promisify(execFile);

export async function runComponents(ctx: BenchContext): Promise<ComponentCost[]> {
  const { dir, client } = await freshKmipdData(ctx, 'components');
  const server = await startKmipd(ctx, dir, client);
  let template: string;
  try {
    template = (await seedKeys(server.endpoint, server.client, 1, 1))[0]!.id;
  } finally {
    await server.stop();
  }
  const out = join(dir, 'components.json');
  await run(process.execPath, [VITE_NODE, join(BENCH_DIR, 'components.ts'), '--', '--data', dir, '--template', template, '--out', out], {
    cwd: ctx.root,
    maxBuffer: 16 << 20,
    timeout: 600_000,
  });
  const costs = JSON.parse(readFileSync(out, 'utf8')) as ComponentCost[];
  for (const c of costs) ctx.log(`component ${c.what}: ${c.wallUs.toFixed(1)} µs wall, ${c.cpuUs.toFixed(1)} µs CPU per call`);
  return costs;
}
