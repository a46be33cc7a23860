// Pure policy pieces: which role may run which operation, how subjects compare, root key labels.
import { describe, expect, it } from 'vitest';
import { Operation } from '../../src/kmip/registry/generated.js';
import { isAllowed, requiredRole } from '../../src/operations/authorization.js';
import { canonicalSubject, parseSubjectArgument } from '../../src/pki/index.js';
import { nextRootKeyLabel } from '../../src/cli/root-commands.js';

describe('roles', () => {
  it('reader reads attributes and locates; writer also gets key material; manager does the rest', () => {
    for (const op of [Operation.DiscoverVersions, Operation.Query, Operation.Locate, Operation.GetAttributes, Operation.GetAttributeList]) {
      expect(requiredRole(op)).toBe('reader');
    }
    expect(requiredRole(Operation.Get)).toBe('writer');
    for (const op of [Operation.Create, Operation.Register, Operation.Activate, Operation.Revoke, Operation.Destroy, Operation.AddAttribute, Operation.ModifyAttribute, Operation.ReKey]) {
      expect(requiredRole(op)).toBe('manager');
    }
    expect(isAllowed('reader', Operation.Get)).toBe(false);
    expect(isAllowed('writer', Operation.Get)).toBe(true);
    expect(isAllowed('writer', Operation.Create)).toBe(false);
    expect(isAllowed('manager', Operation.Destroy)).toBe(true);
  });

  it('denies by default: an operation nobody listed needs manager', () => {
    expect(requiredRole(Operation.Export)).toBe('manager');
    expect(requiredRole(0x7fff)).toBe('manager');
  });
});

describe('subjects', () => {
  it('compares regardless of attribute order, spacing and type case, but values exactly', () => {
    const cert = canonicalSubject([['O', 'Corp'], ['CN', 'vc01.corp']]);
    expect(parseSubjectArgument('CN=vc01.corp, O=Corp')).toBe(cert);
    expect(parseSubjectArgument('/O=Corp/CN=vc01.corp')).toBe(cert);
    expect(parseSubjectArgument('cn=vc01.corp,o=Corp')).toBe(cert);
    expect(parseSubjectArgument('CN=VC01.corp,O=Corp')).not.toBe(cert);
    expect(parseSubjectArgument('CN=vc01.corp')).not.toBe(cert);
  });

  it('keeps escaped separators inside values', () => {
    expect(parseSubjectArgument('O=Corp\\, Inc.,CN=x')).toBe(canonicalSubject([['CN', 'x'], ['O', 'Corp, Inc.']]));
    expect(() => parseSubjectArgument('vc01')).toThrow(/TYPE=value/);
  });
});

describe('root key labels', () => {
  it('counts versions up, skipping labels already used', () => {
    expect(nextRootKeyLabel('kmipd-crk-v1', new Set())).toBe('kmipd-crk-v2');
    expect(nextRootKeyLabel('kmipd-crk-v9', new Set(['kmipd-crk-v10']))).toBe('kmipd-crk-v11');
    expect(nextRootKeyLabel('crk-2026', new Set())).toBe('crk-2026-v2');
  });
});
