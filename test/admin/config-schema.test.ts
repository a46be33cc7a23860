// The configuration schema is the one source of truth: the loader checks kmipd.json against it,
// `kmipd serve` takes its limit flags from it, and the README's references are generated from
// it and from commander's definitions. These tests fail when any of them drift apart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CONFIG_SCHEMA, DEFAULT_LIMITS, LIMIT_SETTINGS, resolveConfig, type Section, type Setting } from '../../src/server/config.js';
import { configReferenceMarkdown } from '../../src/server/config-reference.js';
import { GENERATED_SECTIONS, generatedText, regenerate } from '../../src/cli/reference-docs.js';
import { buildProgram } from '../../src/cli/main.js';
import { KMIPD, ROOT, kmipd, tempDir } from '../helpers/kmipd.js';

const run = promisify(execFile);

/** A kmipd.json as `init` writes it for the embedded SoftHSM token. */
const written = () => ({
  version: 1,
  hsm: {
    module: '/usr/lib/softhsm/libsofthsm2.so',
    tokenLabel: 'kmipd',
    pin: { kind: 'json-file', path: 'hsm/pins.json', field: 'user_pin' },
    rootKeyLabel: 'kmipd-crk-v1',
    softhsmConf: 'hsm/softhsm2.conf',
  },
  store: { sqlite: 'kmipd.db' },
  tls: { cert: 'pki/server.crt', key: 'pki/server.key', clientCa: 'pki/ca.crt', compatCiphers: false },
  pki: { dir: 'pki' },
  listen: '127.0.0.1:5696',
  limits: { ...DEFAULT_LIMITS },
});

function leaves(s: Section<unknown>, prefix = ''): string[] {
  return Object.entries(s.entries as Record<string, Section<unknown> | Setting<unknown>>).flatMap(([k, e]) =>
    e.kind === 'section' ? leaves(e, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

describe('loading kmipd.json', () => {
  it('accepts what init writes and fills the defaults of what it leaves out', () => {
    const cfg = resolveConfig(written());
    expect(cfg.admin).toEqual({ listen: undefined });
    expect(cfg.limits).toEqual(DEFAULT_LIMITS);
    const older = written() as Record<string, unknown>;
    delete older['limits'];
    delete (older['tls'] as Record<string, unknown>)['compatCiphers'];
    const filled = resolveConfig(older);
    expect(filled.limits).toEqual(DEFAULT_LIMITS);
    expect(filled.tls.compatCiphers).toBe(false);
    const external = written() as Record<string, unknown>;
    delete external['pki'];
    expect(resolveConfig(external).pki).toBeUndefined();
    expect(resolveConfig({ ...written(), admin: { listen: '[::1]:9090' } }).admin.listen).toBe('[::1]:9090');
  });

  it.each([
    ['an unknown top-level key', { ...written(), listn: '0.0.0.0:5696' }, /unknown key\(s\) "listn"/],
    ['a misspelt limit', { ...written(), limits: { maxMesageSize: 1024 } }, /limits: unknown key\(s\) "maxMesageSize"/],
    ['a key inherited from Object.prototype', { ...written(), toString: 1 }, /unknown key\(s\) "toString"/],
    ['a limit below its minimum', { ...written(), limits: { maxMessageSize: 8 } }, /limits\.maxMessageSize must be an integer of at least 64, got 8/],
    ['a limit that is not an integer', { ...written(), limits: { idleTimeoutMs: '300000' } }, /limits\.idleTimeoutMs must be an integer/],
    ['a missing required key', { ...written(), hsm: { ...written().hsm, module: undefined } }, /hsm\.module is missing/],
    ['a PIN written into the file', { ...written(), hsm: { ...written().hsm, pin: '1234' } }, /hsm\.pin must be a PIN source object/],
    ['an unknown PIN source kind', { ...written(), hsm: { ...written().hsm, pin: { kind: 'inline', value: '1234' } } }, /hsm\.pin\.kind must be/],
    ['an admin address without a port', { ...written(), admin: { listen: '127.0.0.1' } }, /admin\.listen: --listen must be HOST:PORT/],
    ['a boolean given as a string', { ...written(), tls: { ...written().tls, compatCiphers: 'yes' } }, /tls\.compatCiphers must be true or false/],
    ['another config version', { ...written(), version: 2 }, /version: unsupported config version 2/],
    ['not an object', [], /the top level must be an object/],
  ])('refuses %s, naming the key', (_what, raw, message) => {
    expect(() => resolveConfig(raw, 'x/kmipd.json')).toThrow(message);
  });
});

describe('one schema for the loader, the serve flags and the docs', () => {
  it('has a serve flag for every limit, and serve has every flag the schema names', () => {
    const serve = buildProgram().commands.find((c) => c.name() === 'serve')!;
    const longs = new Set(serve.options.map((o) => o.long));
    const flags = leaves(CONFIG_SCHEMA as Section<unknown>)
      .map((key) => key.split('.').reduce<unknown>((e, k) => (e as Section<unknown>).entries[k as never] ?? e, CONFIG_SCHEMA) as Setting<unknown>)
      .flatMap((s) => (s.serveFlag ? [s.serveFlag.split(' ')[0]] : []));
    expect(flags.length).toBeGreaterThanOrEqual(Object.keys(DEFAULT_LIMITS).length + 3);
    for (const f of flags) expect(longs, f).toContain(f);
    expect(Object.keys(LIMIT_SETTINGS).sort()).toEqual(Object.keys(DEFAULT_LIMITS).sort());
  });

  it('documents every setting, one table row each', () => {
    const table = configReferenceMarkdown();
    const keys = leaves(CONFIG_SCHEMA as Section<unknown>);
    expect(table.trim().split('\n')).toHaveLength(keys.length + 2);
    for (const k of keys) expect(table).toContain(`| \`${k}\` |`);
  });

  it("README.md's generated sections are what the code says (regenerate: npm run build && node scripts/gen-config-reference.mjs)", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const s of GENERATED_SECTIONS) expect(generatedText(readme, s.name), s.name).toBe(s.render());
    expect(regenerate(readme)).toBe(readme);
  });

  it('the generator script agrees (--check on the built CLI)', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'scripts/gen-config-reference.mjs'), '--check'], { cwd: ROOT });
    expect(stdout).toContain('up to date');
    // And it notices drift: a README with a stale table fails the check.
    const stale = regenerate(readFileSync(join(ROOT, 'README.md'), 'utf8')).replace('| `limits.maxDepth` |', '| `limits.maxDepthX` |');
    expect(generatedText(stale, 'config-reference')).not.toBe(configReferenceMarkdown());
  });
});

describe('kmipd config / serve on a real data folder', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    dir = tempDir();
    await kmipd('init', '--data', dir.path);
  });
  afterAll(() => dir?.remove());

  it('config check prints the file with defaults filled in; config reference prints the table', async () => {
    const { stdout } = await kmipd('config', 'check', '--data', dir.path);
    const shown = JSON.parse(stdout) as { admin: { listen: unknown }; limits: Record<string, number>; listen: string };
    expect(shown.admin.listen).toBeNull();
    expect(shown.limits).toEqual(DEFAULT_LIMITS);
    expect(shown.listen).toBe('127.0.0.1:5696');
    expect((await kmipd('config', 'reference')).stdout).toBe(configReferenceMarkdown());
  });

  it('serve refuses to start on a misspelt setting, naming it', async () => {
    const path = join(dir.path, 'kmipd.json');
    const good = readFileSync(path, 'utf8');
    const cfg = JSON.parse(good) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...cfg, admin: { listen: '127.0.0.1:0', lisen: 'x' } }));
    try {
      const failed = await run(process.execPath, [KMIPD, 'serve', '--data', dir.path, '--listen', '127.0.0.1:0'], { cwd: ROOT }).then(
        () => undefined,
        (err: { code?: number; stderr?: string }) => err,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toMatch(/kmipd\.json: admin: unknown key\(s\) "lisen"/);
    } finally {
      writeFileSync(path, good);
    }
  });
});
