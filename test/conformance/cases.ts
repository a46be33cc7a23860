// Which OASIS test cases we replay, and which of them are outside kmipd's scope.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Operation, Tag } from '../../src/kmip/registry/generated.js';
import {
  casePairs,
  messageVersion,
  normaliseSpaces,
  parseCaseXml,
  walk,
  xmlToCaseItem,
  type CaseItem,
  type XmlNode,
} from './xml-to-ttlv.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/oasis-xml/', import.meta.url));

/**
 * Selection rule (the copy in fixtures/oasis-xml/ holds exactly these files): from the OASIS sets
 * profiles-v1.4-os, profiles-v2.1-os, profiles-v1.0-derived and testcases-v1.4-cnprd01, every
 * file whose name starts with one of these prefixes. The first six are the profiles built on
 * symmetric keys (lifecycle, foundry, baseline, tape library, query server, attribute
 * extensions); the TC-* ones are the v1.4 test cases that only manage symmetric keys or query
 * the server.
 */
export const SELECTED_PREFIXES = [
  'SKLC-', 'SKFF-', 'BL-M-', 'TL-M-', 'QS-M-', 'AX-M-',
  'TC-OFFSET-', 'TC-Q-', 'TC-REKEY-', 'TC-I18N-', 'TC-MDO-', 'TC-EXTRACTABLE-', 'TC-SENSITIVE-',
  'TC-RNG-ATTR-', 'TC-CS-CORVAL-', 'TC-WRAP-',
] as const;

/**
 * Cases that continue the story of the previous file: the tape-library TL-M-2 creates the key a
 * tape uses and leaves it; TL-M-3 finds it by its Application Specific Information, reads it
 * and destroys it. The runner keeps the first file's objects alive until the second has run.
 */
const CONTINUES_FROM: Readonly<Record<string, string>> = {
  'TL-M-3-14': 'TL-M-2-14',
  'TL-M-3-21': 'TL-M-2-21',
};

/** Cryptographic services and server-to-client messages: kmipd is a key manager, not a crypto service. */
const OUT_OF_SCOPE_OPERATIONS: ReadonlyMap<number, string> = new Map([
  ...(['Encrypt', 'Decrypt', 'Sign', 'SignatureVerify', 'MAC', 'MACVerify', 'Hash', 'RNGRetrieve', 'RNGSeed', 'DeriveKey',
    'CreateKeyPair', 'ReKeyKeyPair', 'Certify', 'ReCertify', 'CreateSplitKey', 'JoinSplitKey', 'Validate'] as const).map(
    (n) => [Operation[n], `operation ${n} (cryptographic service) not supported`] as const,
  ),
  ...(['Put', 'Notify'] as const).map((n) => [Operation[n], `operation ${n} is server-to-client`] as const),
]);

/**
 * Managed objects kmipd does not store. It generates symmetric keys and stores what clients
 * register of secret data, opaque objects, public/private keys and certificates (2.1 Baseline).
 */
const OTHER_OBJECT_TAGS = new Set<number>([Tag.CertificateRequest, Tag.SplitKey, Tag.Template, Tag.PGPKey]);
const STORED_OBJECT_TYPES = new Set(['SymmetricKey', 'SecretData', 'OpaqueObject', 'PrivateKey', 'PublicKey', 'Certificate']);

export interface LoadedPair {
  readonly request: CaseItem;
  readonly response: CaseItem;
  /** Operations of the request's batch items, for reports. */
  readonly operations: readonly string[];
}

export interface LoadedCase {
  /** File name without `.xml`, e.g. `SKLC-M-1-14`; unique across the selection. */
  readonly name: string;
  /** Path under fixtures/oasis-xml/, e.g. `profiles-v1.4-os/mandatory/SKLC-M-1-14.xml`. */
  readonly file: string;
  readonly set: string;
  /** Table row: `SKLC-M`, `BL-M`, `TC-Q`, … */
  readonly profile: string;
  /** A profile's mandatory case (`-M-` in the name); test-case (TC-*) files are informative. */
  readonly mandatory: boolean;
  /** Protocol version of the first request ("1.4"). */
  readonly version: string;
  readonly pairs: readonly LoadedPair[];
  /** Set when the case is outside kmipd's scope. */
  readonly notApplicable: string | undefined;
  /** Name of the case whose objects this one uses (it must run right after it). */
  readonly continuesFrom: string | undefined;
}

export function profileOf(name: string): string {
  const base = name.replace(/-\d+-\d+$/, '');
  return base.startsWith('TC-Q-') ? 'TC-Q' : base;
}

export function isSelected(fileName: string): boolean {
  return SELECTED_PREFIXES.some((p) => fileName.startsWith(p)) && fileName.endsWith('.xml');
}

/** Every selected file under fixtures/oasis-xml/, sorted. */
export function listCaseFiles(root = FIXTURES): string[] {
  const out: string[] = [];
  const visit = (dir: string) => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) visit(p);
      else if (isSelected(e)) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  visit(root);
  return out;
}

function operationsOf(request: XmlNode): string[] {
  return request.children.filter((c) => c.name === 'BatchItem').map((b) => b.children.find((c) => c.name === 'Operation')?.value ?? '?');
}

/** Why a case is outside kmipd's scope, judged from its requests only (responses may list anything). */
export function notApplicableReason(requests: readonly XmlNode[]): string | undefined {
  for (const req of requests) {
    for (const op of operationsOf(req)) {
      const code = (Operation as Record<string, number>)[op];
      const why = code === undefined ? undefined : OUT_OF_SCOPE_OPERATIONS.get(code);
      if (why) return why;
    }
  }
  for (const req of requests) {
    for (const n of walk(req)) {
      const tag = (Tag as Record<string, number>)[n.name];
      if (tag !== undefined && OTHER_OBJECT_TAGS.has(tag)) return `object type ${n.name} is not stored by kmipd`;
      if (n.name === 'ObjectType' && n.value !== undefined && !STORED_OBJECT_TYPES.has(n.value)) {
        return `object type ${n.value} is not stored by kmipd`;
      }
    }
    // 1.x attributes: <Attribute><AttributeName value="Object Type"/><AttributeValue value="…"/></Attribute>
    for (const n of walk(req)) {
      if (n.name !== 'Attribute') continue;
      const name = n.children.find((c) => c.name === 'AttributeName')?.value;
      const value = n.children.find((c) => c.name === 'AttributeValue')?.value;
      if (name !== undefined && normaliseSpaces(name) === 'Object Type' && value !== undefined && !STORED_OBJECT_TYPES.has(value)) {
        return `object type ${value} is not stored by kmipd`;
      }
    }
  }
  return undefined;
}

export function loadCase(file: string, root = FIXTURES): LoadedCase {
  const name = file.replace(/^.*\//, '').replace(/\.xml$/, '');
  const set = file.split('/')[0]!;
  const doc = parseCaseXml(readFileSync(join(root, file), 'utf8'));
  const xmlPairs = casePairs(doc).pairs;
  // The v1.0 cases were extracted from HTML: collapse the whitespace runs that HTML rendering hid.
  const normaliseText = set === 'profiles-v1.0-derived';
  const pairs = xmlPairs.map(({ request, response }) => {
    const version = messageVersion(request);
    return {
      request: xmlToCaseItem(request, { version, normaliseText }),
      response: xmlToCaseItem(response, { version, normaliseText }),
      operations: operationsOf(request),
    };
  });
  const version = (xmlPairs[0] && messageVersion(xmlPairs[0].request)) ?? '?';
  return {
    name,
    file,
    set,
    profile: profileOf(name),
    mandatory: /-M-/.test(name),
    version,
    pairs,
    notApplicable: notApplicableReason(xmlPairs.map((p) => p.request)),
    continuesFrom: CONTINUES_FROM[name],
  };
}
