// kmipd.json: the one configuration file in a data folder. Relative paths are relative to the folder.
// It never holds a PIN, only where to read one.
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { resolveLimits, type Limits } from './limits.js';

export { DEFAULT_LIMITS, type Limits } from './limits.js';

export type PinSource =
  | { readonly kind: 'json-file'; readonly path: string; readonly field: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'env'; readonly name: string };

export interface KmipdConfig {
  readonly version: 1;
  readonly hsm: {
    readonly module: string;
    readonly tokenLabel: string;
    readonly pin: PinSource;
    readonly rootKeyLabel: string;
    /** SoftHSM only: its configuration file, passed as SOFTHSM2_CONF. */
    readonly softhsmConf?: string;
  };
  readonly store: { readonly sqlite: string };
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string; readonly compatCiphers: boolean };
  readonly pki: { readonly dir: string } | undefined;
  readonly listen: string;
  readonly limits: Limits;
}

export const CONFIG_FILE = 'kmipd.json';
export const DEFAULT_LISTEN = '127.0.0.1:5696';

export function configPath(dataDir: string): string {
  return join(dataDir, CONFIG_FILE);
}

export function resolveIn(dataDir: string, p: string): string {
  return isAbsolute(p) ? p : join(dataDir, p);
}

export function loadConfig(dataDir: string): KmipdConfig {
  const path = configPath(dataDir);
  if (!existsSync(path)) throw new Error(`${path} not found: run \`kmipd init --data ${dataDir}\` first`);
  const cfg = JSON.parse(readFileSync(path, 'utf8')) as KmipdConfig;
  if (cfg.version !== 1) throw new Error(`${path}: unsupported config version ${String(cfg.version)}`);
  // Limits missing from an older kmipd.json take their defaults.
  return { ...cfg, limits: resolveLimits(cfg.limits as Partial<Limits> | undefined, `${path}: limits`) };
}

export function saveConfig(dataDir: string, cfg: KmipdConfig): void {
  const path = configPath(dataDir);
  writeFileSync(`${path}.tmp`, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function readPin(dataDir: string, src: PinSource): string {
  switch (src.kind) {
    case 'env': {
      const v = process.env[src.name];
      if (!v) throw new Error(`HSM PIN environment variable ${src.name} is not set`);
      return v;
    }
    case 'file':
      return readFileSync(resolveIn(dataDir, src.path), 'utf8').trim();
    case 'json-file': {
      const v = (JSON.parse(readFileSync(resolveIn(dataDir, src.path), 'utf8')) as Record<string, unknown>)[src.field];
      if (typeof v !== 'string') throw new Error(`${src.path} has no ${src.field}`);
      return v;
    }
  }
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new Error(`port out of range in ${listen}`);
  return { host: (m[1] ?? m[2])!, port };
}
