// bin/kmipd-serve, the way start.sh, the container and the systemd unit start the server: with
// jemalloc preloaded when Debian's libjemalloc2 is installed (scripts/setup.sh installs it), glibc's
// malloc with KMIPD_MALLOC=system, and a clear refusal of anything else. The startup log says which
// allocator runs, and that is what the process has mapped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { allocatorInMaps } from '../../src/server/memory-allocator.js';
import { initAndEnroll, KMIPD_SERVE, ROOT, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { create, simple } from '../helpers/kmip-requests.js';

const V = { major: 1, minor: 4 };
let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'launched');
});
afterAll(() => dir?.remove());

function listeningLine(s: ServerProcess): { allocator?: string } {
  const line = s.logs.find((l) => l.includes('"kmipd listening"'));
  expect(line).toBeDefined();
  return JSON.parse(line!) as { allocator?: string };
}

/** A key created and read back over mutual TLS: the server works on this allocator. */
async function createAndGet(s: ServerProcess): Promise<void> {
  const k = await KmipTestClient.connect(s.port, client);
  try {
    const made = await k.call(V, [create(V)]);
    expect(made.items[0]!.status).toBe(ResultStatus.Success);
    const got = await k.call(V, [simple(Operation.Get, made.items[0]!.payload.requiredText(Tag.UniqueIdentifier))]);
    expect(got.items[0]!.status).toBe(ResultStatus.Success);
  } finally {
    k.close();
  }
}

describe('bin/kmipd-serve', () => {
  it('runs the server on jemalloc, says so when it listens, and serves', async () => {
    const s = await startServe(dir.path);
    try {
      expect(readFileSync(`/proc/${s.proc.pid}/maps`, 'utf8')).toMatch(/\/libjemalloc\.so\.2$/m);
      expect(listeningLine(s).allocator).toBe('jemalloc');
      await createAndGet(s);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('keeps glibc malloc with KMIPD_MALLOC=system', async () => {
    const s = await startServe(dir.path, [], [], { KMIPD_MALLOC: 'system' });
    try {
      expect(readFileSync(`/proc/${s.proc.pid}/maps`, 'utf8')).not.toMatch(/libjemalloc/);
      expect(listeningLine(s).allocator).toBe('system');
      await createAndGet(s);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('refuses an allocator it does not know, before starting anything', () => {
    const r = spawnSync('/bin/sh', [KMIPD_SERVE, '--data', dir.path, '--listen', '127.0.0.1:0'], { cwd: ROOT, env: { ...process.env, NODE: process.execPath, KMIPD_MALLOC: 'tcmalloc' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("KMIPD_MALLOC is jemalloc or system, not 'tcmalloc'");
  });
});

describe('allocatorInMaps', () => {
  const line = (path: string) => `7f1c2a400000-7f1c2a42c000 r-xp 00000000 fe:01 1311 ${path}`;

  it('finds jemalloc by its shared object, wherever it was loaded from', () => {
    expect(allocatorInMaps([line('/usr/bin/node'), line('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2')].join('\n'))).toBe('jemalloc');
    expect(allocatorInMaps(line('/opt/lib/libjemalloc.so'))).toBe('jemalloc');
  });

  it('says system otherwise, including for a file that only mentions jemalloc in its folder', () => {
    expect(allocatorInMaps([line('/usr/bin/node'), line('/usr/lib/x86_64-linux-gnu/libc.so.6')].join('\n'))).toBe('system');
    expect(allocatorInMaps(line('/home/libjemalloc.so.2/notes.txt'))).toBe('system');
    expect(allocatorInMaps('')).toBe('system');
  });
});
