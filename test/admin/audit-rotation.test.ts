// Log rotation as logrotate does it: rename audit.log, send SIGHUP, and the next audit line lands
// in a fresh audit.log while the renamed file keeps every line written before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Operation, ResultStatus } from '../../src/kmip/registry/generated.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';

const V = { major: 1, minor: 1 };
let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'rotator');
  server = await startServe(dir.path);
});
afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

const discover = async () => {
  const k = await KmipTestClient.connect(server.port, client);
  expect((await k.call(V, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
  k.close();
};
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  expect(cond()).toBe(true);
};

describe('audit log rotation', () => {
  it('reopens audit.log on SIGHUP after it was renamed', async () => {
    const audit = join(dir.path, 'audit.log');
    await discover();
    await until(() => existsSync(audit) && readFileSync(audit, 'utf8').includes('DiscoverVersions'));
    renameSync(audit, `${audit}.1`);
    server.proc.kill('SIGHUP');
    await until(() => server.logs.some((l) => l.includes('audit log reopened')));
    await discover();
    await until(() => existsSync(audit) && readFileSync(audit, 'utf8').includes('DiscoverVersions'));
    const before = readFileSync(`${audit}.1`, 'utf8').trim().split('\n');
    const after = readFileSync(audit, 'utf8').trim().split('\n');
    expect(before.filter((l) => l.includes('DiscoverVersions'))).toHaveLength(1);
    expect(after.filter((l) => l.includes('DiscoverVersions'))).toHaveLength(1);
    expect(server.proc.exitCode).toBeNull();
  });
});
