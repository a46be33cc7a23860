// Tenants: a client sees and uses only its tenant's keys; another tenant's id answers exactly as
// an unknown id would, and its names neither collide nor leak.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { enumeration, structure, textString } from '../../src/ttlv/index.js';
import { NameType, Operation, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { kmipd, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { create, getAttributes, nameAttr, simple } from '../helpers/kmip-requests.js';

const V = { major: 1, minor: 4 };
let dir: ReturnType<typeof tempDir>;
let server: ServerProcess;
let a: KmipTestClient;
let b: KmipTestClient;

async function enroll(name: string, tenant: string): Promise<ClientBundle> {
  const out = join(dir.path, 'clients');
  await kmipd('client', 'enroll', name, '--data', dir.path, '--out', out, '--tenant', tenant, '--role', 'manager');
  return { cert: join(out, `${name}.crt`), key: join(out, `${name}.key`), ca: join(out, 'ca.crt') };
}

beforeAll(async () => {
  dir = tempDir();
  await kmipd('init', '--data', dir.path);
  const [ca, cb] = [await enroll('vc-blue', 'blue'), await enroll('vc-green', 'green')];
  server = await startServe(dir.path);
  a = await KmipTestClient.connect(server.port, ca);
  b = await KmipTestClient.connect(server.port, cb);
});
afterAll(async () => {
  a?.close();
  b?.close();
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

const locateByName = (n: string) =>
  simple(Operation.Locate, undefined, [
    structure(Tag.Attribute, [textString(Tag.AttributeName, 'Name'), structure(Tag.AttributeValue, [textString(Tag.NameValue, n), enumeration(Tag.NameType, NameType.UninterpretedTextString)])]),
  ]);

describe('tenant isolation', () => {
  it('hides one tenant\'s key from another exactly as an unknown id', async () => {
    const made = await a.call(V, [create(V, [nameAttr('shared-name')])]);
    const id = made.items[0]!.payload.requiredText(Tag.UniqueIdentifier);
    expect((await a.call(V, [simple(Operation.Get, id)])).items[0]!.status).toBe(ResultStatus.Success);

    const unknown = await b.call(V, [simple(Operation.Get, '00000000-0000-4000-8000-000000000000')]);
    for (const op of [Operation.Get, Operation.GetAttributes, Operation.GetAttributeList, Operation.Activate, Operation.Destroy]) {
      const r = await b.call(V, [simple(op, id)]);
      expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.ItemNotFound });
      expect(r.items[0]!.message!.replace(id, 'ID')).toBe(unknown.items[0]!.message!.replace('00000000-0000-4000-8000-000000000000', 'ID'));
    }
    const located = await b.call(V, [locateByName('shared-name')]);
    expect(located.items[0]!.payload.texts(Tag.UniqueIdentifier)).toEqual([]);
    expect((await a.call(V, [locateByName('shared-name')])).items[0]!.payload.texts(Tag.UniqueIdentifier)).toEqual([id]);
  });

  it('lets each tenant use a name the other uses', async () => {
    const r = await b.call(V, [create(V, [nameAttr('shared-name')])]);
    expect(r.items[0]!.status).toBe(ResultStatus.Success);
    const dup = await b.call(V, [create(V, [nameAttr('shared-name')])]);
    expect(dup.items[0]).toMatchObject({ status: ResultStatus.OperationFailed });
  });

  it('locates only the tenant\'s own keys', async () => {
    const all = async (c: KmipTestClient) => (await c.call(V, [simple(Operation.Locate)])).items[0]!.payload.texts(Tag.UniqueIdentifier);
    const [ia, ib] = [await all(a), await all(b)];
    expect(ia.length).toBeGreaterThan(0);
    expect(ib.length).toBeGreaterThan(0);
    expect(ia.filter((x) => ib.includes(x))).toEqual([]);
    const attrsA = await a.call(V, [getAttributes(V, ia[0]!, ['Name'])]);
    expect(attrsA.items[0]!.status).toBe(ResultStatus.Success);
  });

  it('lists keys per tenant for the operator', async () => {
    const { stdout } = await kmipd('keys', 'list', '--data', dir.path, '--tenant', 'green', '--json');
    const rows = JSON.parse(stdout) as { tenant: string }[];
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.tenant === 'green')).toBe(true);
  });
});
