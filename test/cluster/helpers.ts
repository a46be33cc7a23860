// Two kmipd nodes on one PostgreSQL database and one HSM token, as an operator would set them up:
//   node A: `kmipd init --store postgres://…` (embedded SoftHSM token, root key, dev CA);
//   node B: the dev CA copied from A (both server certificates chain to the CA vCenter trusts), then
//           `kmipd init --store … --pkcs11-module … --token-label … --pin-env … --existing-root-key`
//           on A's token (SOFTHSM2_CONF points at A's token folder: "the same HSM").
// The PostgreSQL password is never on a command line nor in kmipd.json: the nodes read PGPASSWORD.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { byteString, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { CryptographicAlgorithm, ObjectType, Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { kmipd, type ClientBundle } from '../helpers/kmipd.js';
import type { BatchItemRequest, KmipTestClient } from '../helpers/kmip-client.js';
import { TEST_PG_PASSWORD } from '../helpers/postgres.js';
import { V12 } from '../operator/helpers.js';

export const HSM_PIN_ENV = 'KMIPD_TEST_HSM_PIN';

export interface ClusterFolders {
  readonly a: string;
  readonly b: string;
  /** A client enrolled through node A's folder. */
  readonly bundle: ClientBundle;
}

export async function initTwoNodes(root: string, url: string): Promise<ClusterFolders> {
  process.env['PGPASSWORD'] = TEST_PG_PASSWORD;
  const a = join(root, 'node-a');
  const b = join(root, 'node-b');
  await kmipd('init', '--data', a, '--store', url);
  const cfgA = JSON.parse(readFileSync(join(a, 'kmipd.json'), 'utf8')) as { hsm: { module: string; tokenLabel: string; rootKeyLabel: string } };
  // Node B's processes (CLI and server) reach A's SoftHSM token through the environment, as they
  // would reach a network HSM through its module's own configuration.
  process.env['SOFTHSM2_CONF'] = join(a, 'hsm', 'softhsm2.conf');
  process.env[HSM_PIN_ENV] = (JSON.parse(readFileSync(join(a, 'hsm', 'pins.json'), 'utf8')) as { user_pin: string }).user_pin;
  mkdirSync(join(b, 'pki'), { recursive: true, mode: 0o700 });
  for (const f of ['ca.crt', 'ca.key']) copyFileSync(join(a, 'pki', f), join(b, 'pki', f));
  await kmipd(
    'init', '--data', b, '--store', url,
    '--pkcs11-module', cfgA.hsm.module, '--token-label', cfgA.hsm.tokenLabel, '--pin-env', HSM_PIN_ENV,
    '--root-key-label', cfgA.hsm.rootKeyLabel, '--existing-root-key',
  );
  const out = join(root, 'clients');
  await kmipd('client', 'enroll', 'vcenter', '--data', a, '--out', out);
  return { a, b, bundle: { cert: join(out, 'vcenter.crt'), key: join(out, 'vcenter.key'), ca: join(out, 'ca.crt') } };
}

export function registerRequest(material: Buffer): BatchItemRequest {
  const key = structure(Tag.SymmetricKey, [
    structure(Tag.KeyBlock, [
      enumeration(Tag.KeyFormatType, 1),
      structure(Tag.KeyValue, [byteString(Tag.KeyMaterial, material)]),
      enumeration(Tag.CryptographicAlgorithm, CryptographicAlgorithm.AES),
      integer(Tag.CryptographicLength, material.length * 8),
    ]),
  ]);
  const attrs = structure(Tag.TemplateAttribute, [
    structure(Tag.Attribute, [textString(Tag.AttributeName, 'Cryptographic Usage Mask'), integer(Tag.AttributeValue, 12)]),
  ]);
  return { operation: Operation.Register, payload: [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), attrs, key] };
}

/** Register known key material; resolves with the new id (the ack) or throws. */
export async function registerKey(k: KmipTestClient): Promise<{ id: string; material: Buffer }> {
  const material = randomBytes(32);
  const r = await k.call(V12, [registerRequest(material)]);
  const item = r.items[0]!;
  if (item.status !== ResultStatus.Success) throw new Error(`Register failed: ${item.message}`);
  return { id: item.payload.requiredText(Tag.UniqueIdentifier), material };
}

export interface NodeStatus {
  node: string;
  listen: string;
  pid: number;
  health: string;
}

export async function clusterStatus(data: string): Promise<{ database: { reachable: boolean; durability?: Record<string, string> }; nodes: NodeStatus[] }> {
  const { stdout } = await kmipd('cluster', 'status', '--data', data, '--json');
  return JSON.parse(stdout) as { database: { reachable: boolean }; nodes: NodeStatus[] };
}
