// Username/Password credentials: checked when the operator set one for the client, a request
// without a credential still served (vCenter sends one on some requests only).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { enumeration, structure, textString } from '../../src/ttlv/index.js';
import { CredentialType, Operation, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { KMIPD, ROOT, kmipd, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';

const run = promisify(execFile);
const V11 = { major: 1, minor: 1 };
let dir: ReturnType<typeof tempDir>;
let server: ServerProcess;
let withPassword: KmipTestClient;
let without: KmipTestClient;

const credential = (user: string, pass: string) =>
  structure(Tag.Authentication, [
    structure(Tag.Credential, [
      enumeration(Tag.CredentialType, CredentialType.UsernameAndPassword),
      structure(Tag.CredentialValue, [textString(Tag.Username, user), textString(Tag.Password, pass)]),
    ]),
  ]);
const discover = { operation: Operation.DiscoverVersions, payload: [] };

async function enroll(name: string): Promise<ClientBundle> {
  const out = join(dir.path, 'clients');
  await kmipd('client', 'enroll', name, '--data', dir.path, '--out', out);
  return { cert: join(out, `${name}.crt`), key: join(out, `${name}.key`), ca: join(out, 'ca.crt') };
}

beforeAll(async () => {
  dir = tempDir();
  await kmipd('init', '--data', dir.path);
  const [a, b] = [await enroll('vcenter'), await enroll('esx')];
  await run(process.execPath, [KMIPD, 'client', 'set-password', 'vcenter', '--data', dir.path, '--username', 'kmip-user', '--password-env', 'KMIPD_TEST_PW'], {
    cwd: ROOT,
    env: { ...process.env, KMIPD_TEST_PW: 'correct horse battery' },
  });
  server = await startServe(dir.path);
  withPassword = await KmipTestClient.connect(server.port, a);
  without = await KmipTestClient.connect(server.port, b);
});
afterAll(async () => {
  withPassword?.close();
  without?.close();
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

describe('Username/Password credentials', () => {
  it('accepts the configured credential, and a request without one', async () => {
    expect((await withPassword.call(V11, [discover], [credential('kmip-user', 'correct horse battery')])).items[0]!.status).toBe(ResultStatus.Success);
    expect((await withPassword.call(V11, [discover])).items[0]!.status).toBe(ResultStatus.Success);
  });

  it('refuses a wrong password or username with Authentication Not Successful', async () => {
    for (const [u, p] of [['kmip-user', 'wrong password!'], ['someone', 'correct horse battery']] as const) {
      const r = await withPassword.call(V11, [discover, discover], [credential(u, p)]);
      expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.AuthenticationNotSuccessful, operation: Operation.DiscoverVersions });
    }
  });

  it('does not check credentials of a client without a password', async () => {
    expect((await without.call(V11, [discover], [credential('anything', 'at all')])).items[0]!.status).toBe(ResultStatus.Success);
  });

  it('stops checking after clear-password', async () => {
    await kmipd('client', 'clear-password', 'vcenter', '--data', dir.path);
    expect((await withPassword.call(V11, [discover], [credential('kmip-user', 'wrong password!')])).items[0]!.status).toBe(ResultStatus.Success);
  });
});
