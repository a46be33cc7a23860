// Roles per client (reader / writer / manager) enforced on every batch item, each denial answered
// with Permission Denied and audited, and `kmipd audit tail` filtering the audit log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { textString, enumeration, structure } from '../../src/ttlv/index.js';
import { Operation, ResultReason, ResultStatus, RevocationReasonCode, Tag } from '../../src/kmip/registry/generated.js';
import { kmipd, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { auditRecords, createKey, createRequest, eventually, getKey, V12, V21 } from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let data: string;
let server: ServerProcess;
const bundles: Record<string, ClientBundle> = {};

async function enroll(name: string, role: string): Promise<void> {
  const out = join(dir.path, 'clients');
  await kmipd('client', 'enroll', name, '--data', data, '--out', out, '--role', role, '--tenant', 'ops'); // one tenant: roles, not tenants, are under test here
  bundles[name] = { cert: join(out, `${name}.crt`), key: join(out, `${name}.key`), ca: join(out, 'ca.crt') };
}

beforeAll(async () => {
  dir = tempDir();
  data = join(dir.path, 'data');
  await kmipd('init', '--data', data);
  await enroll('boss', 'manager');
  await enroll('app', 'writer');
  await enroll('auditor', 'reader');
  server = await startServe(data);
});

afterAll(async () => {
  await server?.stop();
  dir?.remove();
});

const op = (operation: number, id?: string, extra: ReturnType<typeof structure>[] = []) => ({
  operation,
  payload: [...(id ? [textString(Tag.UniqueIdentifier, id)] : []), ...extra],
});

describe('roles', () => {
  let id: string;
  let boss: KmipTestClient;
  let app: KmipTestClient;
  let auditor: KmipTestClient;

  beforeAll(async () => {
    boss = await KmipTestClient.connect(server.port, bundles['boss']!);
    app = await KmipTestClient.connect(server.port, bundles['app']!);
    auditor = await KmipTestClient.connect(server.port, bundles['auditor']!);
    id = await createKey(boss, 'shared-kek');
  });
  afterAll(() => [boss, app, auditor].forEach((k) => k?.close()));

  it('reader: attributes and Locate, never key material, nothing that changes anything', async () => {
    const ok = await auditor.call(V12, [
      op(Operation.DiscoverVersions),
      op(Operation.Locate, undefined, [structure(Tag.Attribute, [textString(Tag.AttributeName, 'Name'), structure(Tag.AttributeValue, [textString(Tag.NameValue, 'shared-kek'), enumeration(Tag.NameType, 1)])])]),
      op(Operation.GetAttributes, id),
      op(Operation.GetAttributeList, id),
    ]);
    expect(ok.items.map((i) => i.status)).toEqual([ResultStatus.Success, ResultStatus.Success, ResultStatus.Success, ResultStatus.Success]);
    expect(ok.items[1]!.payload.all(Tag.UniqueIdentifier).length).toBeGreaterThan(0);
    expect(await getKey(auditor, id)).toMatchObject({ reason: ResultReason.PermissionDenied });
    for (const denied of [createRequest('nope'), op(Operation.Activate, id), op(Operation.Destroy, id)]) {
      const r = await auditor.call(V21, [denied]);
      expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.PermissionDenied });
      expect(r.items[0]!.message).toMatch(/role reader/);
    }
  });

  it('writer: reader + Get key material; no Create, Revoke or Destroy', async () => {
    const material = await getKey(app, id);
    expect(Buffer.isBuffer(material) && material.length).toBe(32);
    const revoke = op(Operation.Revoke, id, [structure(Tag.RevocationReason, [enumeration(Tag.RevocationReasonCode, RevocationReasonCode.CessationOfOperation)])]);
    for (const denied of [createRequest('nope'), revoke, op(Operation.Destroy, id)]) {
      const r = await app.call(V12, [denied]);
      expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.PermissionDenied });
    }
  });

  it('manager: everything', async () => {
    const other = await createKey(boss);
    const r = await boss.call(V12, [
      op(Operation.Activate, other),
      op(Operation.Revoke, other, [structure(Tag.RevocationReason, [enumeration(Tag.RevocationReasonCode, RevocationReasonCode.CessationOfOperation)])]),
      op(Operation.Destroy, other),
    ]);
    expect(r.items.map((i) => i.status)).toEqual([ResultStatus.Success, ResultStatus.Success, ResultStatus.Success]);
  });

  it('a denied item stops the batch like any failure and answers nothing sensitive', async () => {
    const r = await auditor.call(V12, [op(Operation.Get, id), op(Operation.GetAttributes, id)]);
    expect(r.items).toHaveLength(1);
    expect(r.items[0]!.payload.items).toHaveLength(0);
  });

  it('audits each request with client, fingerprint, tenant, role, operation, object and result; denials included', async () => {
    const records = await eventually('denied Get audit', () => {
      const all = auditRecords(data);
      return all.some((r) => r['client'] === 'auditor' && r['operation'] === 'Get' && r['reason'] === 'PermissionDenied') ? all : undefined;
    });
    const denied = records.find((r) => r['client'] === 'auditor' && r['operation'] === 'Get')!;
    expect(denied).toMatchObject({ tenant: 'ops', role: 'reader', object: id, result: 'OperationFailed', reason: 'PermissionDenied' });
    expect(String(denied['fingerprint'])).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof denied['time']).toBe('string');
    // The line's layout: who asked (bound once per client) before what was asked and its result.
    expect(Object.keys(denied)).toEqual(['level', 'time', 'pid', 'hostname', 'name', 'client', 'fingerprint', 'tenant', 'role', 'operation', 'object', 'result', 'reason', 'ms', 'msg']);
    const served = records.find((r) => r['client'] === 'app' && r['operation'] === 'Get' && r['result'] === 'Success')!;
    expect(served).toMatchObject({ tenant: 'ops', role: 'writer', object: id });
  });
});

describe('kmipd audit tail', () => {
  const lines = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('filters by client, key, result and operation', async () => {
    const denied = lines((await kmipd('audit', 'tail', '--data', data, '--client', 'auditor', '--result', 'OperationFailed', '-n', '100')).stdout);
    expect(denied.length).toBeGreaterThanOrEqual(4);
    expect(denied.every((r) => r['client'] === 'auditor' && r['reason'] === 'PermissionDenied')).toBe(true);
    const fp = String(denied[0]!['fingerprint']);
    const byFp = lines((await kmipd('audit', 'tail', '--data', data, '--client', fp.slice(0, 12), '-n', '100')).stdout);
    expect(byFp.every((r) => r['client'] === 'auditor')).toBe(true);
    expect(byFp.length).toBeGreaterThan(denied.length); // its successful requests too
    const id = String(denied.find((r) => r['operation'] === 'Get')!['object']);
    const byKey = lines((await kmipd('audit', 'tail', '--data', data, '--key', id, '-n', '1000')).stdout);
    expect(new Set(byKey.map((r) => r['client']))).toEqual(new Set(['boss', 'app', 'auditor']));
    expect(byKey.every((r) => r['object'] === id)).toBe(true);
    const last2 = lines((await kmipd('audit', 'tail', '--data', data, '--operation', 'Create', '-n', '2')).stdout);
    expect(last2).toHaveLength(2);
  });

  it('records operator actions too, and prints a table on request', async () => {
    await kmipd('client', 'revoke', 'app', '--data', data);
    const cli = lines((await kmipd('audit', 'tail', '--data', data, '--operation', 'client revoke')).stdout);
    expect(cli.at(-1)).toMatchObject({ source: 'cli', client: 'app', result: 'Success' });
    const { stdout } = await kmipd('audit', 'tail', '--data', data, '--format', 'table', '-n', '3');
    expect(stdout.split('\n')[0]).toMatch(/^TIME\s+CLIENT\s+TENANT\s+OPERATION\s+OBJECT\s+RESULT\s+REASON/);
  });
});
