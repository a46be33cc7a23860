// Which malloc this process runs on, as the startup log reports it. bin/kmipd-serve preloads
// jemalloc (Debian's libjemalloc2) when it is installed: under glibc's malloc the serve process
// spent ~10 % of its CPU in malloc/free (buffers freed on another thread than the one that made
// them, fastbin consolidation); with jemalloc it answered 1.18-1.39x the Gets (bench/RESULTS.md,
// eighteenth round).
import { readFileSync } from 'node:fs';

export type MemoryAllocator = 'jemalloc' | 'system';

/** The allocator a process's memory map (the text of /proc/PID/maps) shows loaded. */
export function allocatorInMaps(maps: string): MemoryAllocator {
  return /\/libjemalloc\.so[^\s/]*$/m.test(maps) ? 'jemalloc' : 'system';
}

/** This process's allocator; 'system' where /proc cannot tell (not Linux). */
export function memoryAllocator(): MemoryAllocator {
  try {
    return allocatorInMaps(readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    return 'system';
  }
}
