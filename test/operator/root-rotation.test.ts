// Root key rotation on a serving server: every key answers with identical bytes before, during and
// after the re-wrap, and after the rotating process is killed half-way and run again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { KMIPD, ROOT, kmipd, initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { auditRecords, createKey, eventually, getKeyBytes } from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let data: string;
let client: ClientBundle;
let server: ServerProcess;
let kmip: KmipTestClient;
const keys = new Map<string, Buffer>();

const KEYS = 40;

/** Wrapped keys per root key label, read straight from the store. */
function labels(): Record<string, number> {
  const db = new Database(join(data, 'kmipd.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT root_key_label AS l, count(*) AS n FROM objects WHERE wrapped_key IS NOT NULL GROUP BY l').all() as { l: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.l, r.n]));
  } finally {
    db.close();
  }
}

function rotate(...extra: string[]): { proc: ChildProcess; exit: Promise<number | null>; output: () => string } {
  const proc = spawn(process.execPath, [KMIPD, 'root', 'rotate', '--data', data, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, exit: new Promise((resolve) => proc.on('exit', (code) => resolve(code))), output: () => out };
}

async function everyKeyIdentical(k: KmipTestClient): Promise<void> {
  for (const [id, bytes] of keys) expect((await getKeyBytes(k, id)).equals(bytes), `key ${id}`).toBe(true);
}

interface Status {
  versions: { version: number; label: string; state: string; wrappedKeys: number }[];
  active: string;
  inProgress: boolean;
  rewrapped: number;
  total: number;
}
const status = async () => JSON.parse((await kmipd('root', 'status', '--data', data, '--json')).stdout) as Status;

beforeAll(async () => {
  dir = tempDir();
  data = join(dir.path, 'data');
  client = await initAndEnroll(data, 'vc');
  server = await startServe(data);
  kmip = await KmipTestClient.connect(server.port, client);
  for (let i = 0; i < KEYS; i++) {
    const id = await createKey(kmip);
    keys.set(id, await getKeyBytes(kmip, id));
  }
});

afterAll(async () => {
  kmip?.close();
  await server?.stop();
  dir?.remove();
});

describe('kmipd root rotate', () => {
  it('re-wraps every key under a new root key while the server serves them, then retires the old one', async () => {
    expect(labels()).toEqual({ 'kmipd-crk-v1': KEYS });
    const run = rotate('--batch', '2', '--pace', '150');
    let roundsDuringRotation = 0;
    let createdDuring: string | undefined;
    while (run.proc.exitCode === null) {
      const before = labels();
      await everyKeyIdentical(kmip);
      if (Object.keys(before).length === 2 && Object.keys(labels()).length === 2) roundsDuringRotation += 1;
      if (!createdDuring && Object.keys(before).length === 2) {
        // A key created mid-rotation is wrapped under the new root key straight away.
        createdDuring = await createKey(kmip);
        keys.set(createdDuring, await getKeyBytes(kmip, createdDuring));
      }
    }
    expect(await run.exit, run.output()).toBe(0);
    expect(roundsDuringRotation).toBeGreaterThan(0);
    expect(createdDuring).toBeDefined();
    expect(labels()).toEqual({ 'kmipd-crk-v2': KEYS + 1 });
    await everyKeyIdentical(kmip);
    const s = await status();
    expect(s).toMatchObject({ active: 'kmipd-crk-v2', inProgress: false, rewrapped: KEYS + 1, total: KEYS + 1 });
    expect(s.versions.map((v) => [v.label, v.state])).toEqual([
      ['kmipd-crk-v1', 'retired'],
      ['kmipd-crk-v2', 'active'],
    ]);
    // New connections too (no state kept per connection), and the audit trail of the rotation.
    const fresh = await KmipTestClient.connect(server.port, client);
    await everyKeyIdentical(fresh);
    fresh.close();
    const audit = auditRecords(data).filter((r) => r['operation'] === 'root rotate');
    expect(audit.map((r) => [r['phase'], r['result']])).toEqual([
      ['begin', 'Success'],
      ['rewrap', 'Success'],
    ]);
  });

  it('loses nothing when the rotating process is killed half-way; running it again finishes the job', async () => {
    const run = rotate('--batch', '2', '--pace', '300');
    await eventually('a partial rotation', () => {
      const l = labels();
      return (l['kmipd-crk-v3'] ?? 0) >= 6 && (l['kmipd-crk-v2'] ?? 0) > 0 ? true : undefined;
    });
    run.proc.kill('SIGKILL');
    await run.exit;
    const mid = labels();
    expect(Object.keys(mid).sort()).toEqual(['kmipd-crk-v2', 'kmipd-crk-v3']);
    expect(mid['kmipd-crk-v2']! + mid['kmipd-crk-v3']!).toBe(KEYS + 1);
    await everyKeyIdentical(kmip); // served from both root keys meanwhile
    const s = await status();
    expect(s).toMatchObject({ active: 'kmipd-crk-v3', inProgress: true, total: KEYS + 1 });
    expect(s.rewrapped).toBe(mid['kmipd-crk-v3']);
    expect((await kmipd('root', 'status', '--data', data)).stdout).toMatch(/rotation in progress: \d+ of 41 wrapped keys under kmipd-crk-v3/);

    const again = await kmipd('root', 'rotate', '--data', data);
    expect(again.stderr).toContain('resuming the rotation to root key kmipd-crk-v3');
    expect(labels()).toEqual({ 'kmipd-crk-v3': KEYS + 1 });
    expect((await status()).versions.map((v) => v.state)).toEqual(['retired', 'retired', 'active']);
    await everyKeyIdentical(kmip);

    // And at rest: a restarted server still opens every key.
    await server.stop();
    server = await startServe(data);
    kmip.close();
    kmip = await KmipTestClient.connect(server.port, client);
    await everyKeyIdentical(kmip);
  });
});
