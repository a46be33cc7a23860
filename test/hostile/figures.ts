// Each hostile test file adds its figures to a folder the global setup made (figures-setup.ts),
// which prints their sum at the end of the run; each file also prints its own line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { formatFigures, type Tally } from './tally.js';

declare module 'vitest' {
  export interface ProvidedContext {
    hostileFiguresDir: string;
  }
}

export function reportFigures(name: string, t: Tally): void {
  console.log(`hostile figures [${name}]: ${formatFigures(t)}`);
  const dir = inject('hostileFiguresDir');
  if (dir) writeFileSync(join(dir, `${name}.json`), JSON.stringify(t));
}
