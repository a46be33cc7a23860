// How long a durable write takes on the disk holding the stores: a Create is acknowledged only
// after SQLite's fsync, so this bounds what one serial committer can do. 4 KiB write + fdatasync,
// repeated, in the scratch folder.
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Histogram, summarize, type LatencySummary } from './histogram.js';

export interface DiskProbe extends LatencySummary {
  /** Durable writes per second one writer achieves back to back. */
  readonly syncsPerSec: number;
}

export function probeFsync(dir: string, count = 300): DiskProbe {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 1);
  const h = new Histogram();
  const t0 = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const s = performance.now();
      writeSync(fd, block, 0, block.length, (i % 16) * block.length);
      fdatasyncSync(fd);
      h.record((performance.now() - s) * 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return { ...summarize(h), syncsPerSec: (count * 1000) / (performance.now() - t0) };
}
