// Wire-level behaviour of the running server, driven by our own encoder over real mutual TLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integer, enumeration, textString, structure, encodeTtlv, decodeTtlv } from '../../src/ttlv/index.js';
import {
  CryptographicAlgorithm,
  ObjectType,
  Operation,
  QueryFunction,
  ResultReason,
  ResultStatus,
  Tag,
} from '../../src/kmip/registry/generated.js';
import { Fields } from '../../src/kmip/fields.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient, parseResponse, requestMessage } from '../helpers/kmip-client.js';

let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;
let kmip: KmipTestClient;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'proto');
  server = await startServe(dir.path);
  kmip = await KmipTestClient.connect(server.port, client);
});

afterAll(async () => {
  kmip?.close();
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

const V11 = { major: 1, minor: 1 };
const V14 = { major: 1, minor: 4 };
const V21 = { major: 2, minor: 1 };

function aesTemplate11(bits = 256) {
  const attr = (name: string, value: ReturnType<typeof integer> | ReturnType<typeof enumeration>) =>
    structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue }]);
  return structure(Tag.TemplateAttribute, [
    attr('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
    attr('Cryptographic Length', integer(0, bits)),
    attr('Cryptographic Usage Mask', integer(0, 12)),
  ]);
}

describe('Discover Versions', () => {
  it('answers an empty payload with every version, newest first', async () => {
    const r = await kmip.call(V11, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    expect(r.version).toEqual(V11);
    expect(r.items[0]!.status).toBe(ResultStatus.Success);
    const versions = r.items[0]!.payload.structs(Tag.ProtocolVersion).map((s) => {
      const f = Fields.of(s);
      return `${f.requiredInteger(Tag.ProtocolVersionMajor)}.${f.requiredInteger(Tag.ProtocolVersionMinor)}`;
    });
    expect(versions).toEqual(['2.1', '2.0', '1.4', '1.3', '1.2', '1.1', '1.0']);
  });

  it('answers a list with the versions both sides speak', async () => {
    const pv = (a: number, b: number) => structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, a), integer(Tag.ProtocolVersionMinor, b)]);
    const r = await kmip.call(V14, [{ operation: Operation.DiscoverVersions, payload: [pv(3, 0), pv(1, 4), pv(1, 1)] }]);
    expect(r.items[0]!.payload.structs(Tag.ProtocolVersion)).toHaveLength(2);
  });
});

describe('batches and versions', () => {
  it('echoes each Unique Batch Item ID and answers in the request version', async () => {
    const id1 = Buffer.from('0102030405060708', 'hex');
    const id2 = Buffer.from('1112131415161718', 'hex');
    const r = await kmip.call(V11, [
      { operation: Operation.DiscoverVersions, payload: [], id: id1 },
      { operation: Operation.Query, payload: [enumeration(Tag.QueryFunction, QueryFunction.QueryServerInformation)], id: id2 },
    ]);
    expect(r.version).toEqual(V11);
    expect(r.batchCount).toBe(2);
    expect(Buffer.from(r.items[0]!.id!)).toEqual(id1);
    expect(Buffer.from(r.items[1]!.id!)).toEqual(id2);
    expect(r.items[1]!.payload.text(Tag.VendorIdentification)).toMatch(/^kmipd /);
  });

  it('answers an unknown operation with Operation Not Supported in the same version', async () => {
    const r = await kmip.call(V21, [{ operation: Operation.Encrypt, payload: [] }]);
    expect(r.version).toEqual(V21);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.OperationNotSupported, operation: Operation.Encrypt });
  });

  it('lists its operations and object types in Query', async () => {
    const r = await kmip.call(V14, [
      { operation: Operation.Query, payload: [enumeration(Tag.QueryFunction, QueryFunction.QueryOperations), enumeration(Tag.QueryFunction, QueryFunction.QueryObjects)] },
    ]);
    const ops = r.items[0]!.payload.enumerations(Tag.Operation);
    expect(ops).toEqual(expect.arrayContaining([Operation.Create, Operation.Get, Operation.Locate, Operation.Destroy, Operation.DiscoverVersions]));
    expect(ops).not.toContain(Operation.Encrypt);
    expect(r.items[0]!.payload.enumerations(Tag.ObjectType).sort()).toEqual(
      [ObjectType.SymmetricKey, ObjectType.SecretData, ObjectType.OpaqueObject, ObjectType.PublicKey, ObjectType.PrivateKey, ObjectType.Certificate].sort(),
    );
  });

  it('refuses an unsupported protocol version', async () => {
    const r = await kmip.call({ major: 1, minor: 9 }, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    expect(r.version).toEqual(V14);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.InvalidMessage });
  });

  it('refuses a Batch Count that disagrees with the items', async () => {
    const msg = requestMessage(V11, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    const header = msg.value[0]!;
    const bad = structure(Tag.RequestMessage, [
      structure(Tag.RequestHeader, [(header.value as never[])[0]!, integer(Tag.BatchCount, 3)]),
      ...msg.value.slice(1),
    ]);
    kmip.sendRaw(encodeTtlv(bad));
    const r = parseResponse(decodeTtlv((await kmip.next())!));
    expect(r.version).toEqual(V11);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.InvalidMessage });
  });

  it('uses the ID Placeholder between batch items (Create then Activate then Get)', async () => {
    const r = await kmip.call(V11, [
      { operation: Operation.Create, payload: [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), aesTemplate11()] },
      { operation: Operation.Activate, payload: [] },
      { operation: Operation.Get, payload: [] },
    ]);
    expect(r.items.map((i) => i.status)).toEqual([ResultStatus.Success, ResultStatus.Success, ResultStatus.Success]);
    const id = r.items[0]!.payload.text(Tag.UniqueIdentifier);
    expect(r.items[1]!.payload.text(Tag.UniqueIdentifier)).toBe(id);
    expect(r.items[2]!.payload.text(Tag.UniqueIdentifier)).toBe(id);
  });

  it('stops a batch at the first failure by default', async () => {
    const r = await kmip.call(V11, [
      { operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, 'no-such-id')] },
      { operation: Operation.DiscoverVersions, payload: [] },
    ]);
    expect(r.items).toHaveLength(1);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.ItemNotFound });
  });
});

describe('malformed input', () => {
  it('answers an undecodable message with Invalid Message, closes, and keeps serving others', async () => {
    const bad = await KmipTestClient.connect(server.port, client);
    const bytes = Buffer.from(encodeTtlv(requestMessage(V11, [{ operation: Operation.DiscoverVersions, payload: [] }])));
    bytes[bytes.length - 1] = 0x01; // the empty Request Payload now announces a byte that runs past its parent
    bad.sendRaw(bytes);
    const answer = await bad.next();
    expect(answer).toBeDefined();
    const r = parseResponse(decodeTtlv(answer!));
    expect(r.version).toEqual(V11);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.InvalidMessage });
    await bad.waitClosed();
    const ok = await kmip.call(V11, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    expect(ok.items[0]!.status).toBe(ResultStatus.Success);
  });

  it('closes a connection whose first bytes are not a Request Message', async () => {
    const bad = await KmipTestClient.connect(server.port, client);
    bad.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await bad.waitClosed();
    expect(await bad.next()).toBeUndefined();
  });
});
