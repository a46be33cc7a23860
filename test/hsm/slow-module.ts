/**
 * The slow PKCS#11 module (fixtures/slow-pkcs11.c): SoftHSM behind a shim that sleeps in
 * C_Decrypt, C_Encrypt and C_GenerateRandom like a network HSM, and counts those calls in flight.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SOFTHSM_MODULE } from '../../src/hsm/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const SOURCE = path.join(ROOT, 'test/hsm/fixtures/slow-pkcs11.c');
const HEADERS = path.join(ROOT, 'node_modules/pkcs11js/includes');

/** Compiles the shim into `dir` (gcc) and returns the module's path. */
export function buildSlowModule(dir: string, target: string = DEFAULT_SOFTHSM_MODULE): string {
  if (!existsSync(path.join(HEADERS, 'pkcs11/pkcs11.h'))) throw new Error(`PKCS#11 headers not found under ${HEADERS}`);
  const out = path.join(dir, 'slow-pkcs11.so');
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-I', HEADERS, `-DSLOW_PKCS11_TARGET="${target}"`, '-o', out, SOURCE, '-ldl', '-lpthread'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return out;
}

/** What the shim counted since the module was last initialised. */
export interface SlowStats {
  /** Slow calls started, and those that returned an error. */
  readonly calls: number;
  readonly failed: number;
  /** Slow calls running now, the most ever at once, and the most ever at once on one session. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly maxPerSession: number;
}

export function readSlowStats(file: string): SlowStats {
  return JSON.parse(readFileSync(file, 'utf8')) as SlowStats;
}

/** The env that configures the shim; it reads it at C_Initialize. */
export function slowEnv(o: { delayUs: number; statsFile: string; gateFile?: string }): Record<string, string> {
  return {
    SLOW_PKCS11_DELAY_US: String(o.delayUs),
    SLOW_PKCS11_STATS: o.statsFile,
    ...(o.gateFile ? { SLOW_PKCS11_GATE: o.gateFile } : {}),
  };
}
