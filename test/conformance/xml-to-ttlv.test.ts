// The OASIS XML → TTLV conversion used by the conformance runner (no server involved).
import { describe, expect, it } from 'vitest';
import { decodeTtlv, encodeTtlv } from '../../src/ttlv/index.js';
import { ItemType, type TtlvItem } from '../../src/ttlv/types.js';
import { CryptographicAlgorithm, CryptographicUsageMask, ObjectType, Operation, State, Tag } from '../../src/kmip/registry/generated.js';
import { listCaseFiles, loadCase, notApplicableReason, profileOf } from './cases.js';
import {
  CaseFormatError,
  casePairs,
  materialise,
  parseCaseXml,
  placeholderOf,
  xmlToCaseItem,
  type CaseItem,
  type LeafValue,
} from './xml-to-ttlv.js';

/** Convert one XML fragment, with every placeholder replaced by a fixed value of its type. */
function convert(xml: string, opts: { version?: string; normaliseText?: boolean } = {}): TtlvItem {
  return materialise(xmlToCaseItem(parseCaseXml(xml), opts), (p, type): LeafValue => {
    if (p.kind === 'now') return 1_000_000n + BigInt(p.offset);
    return type === ItemType.ByteString ? new Uint8Array([1, 2]) : type === ItemType.TextString ? `<${p.name}>` : 0;
  });
}

function child(item: TtlvItem, ...tags: number[]): TtlvItem {
  let cur = item;
  for (const tag of tags) {
    if (cur.type !== ItemType.Structure) throw new Error('not a structure');
    const next = cur.value.find((c) => c.tag === tag);
    if (!next) throw new Error(`no child 0x${tag.toString(16)}`);
    cur = next;
  }
  return cur;
}

describe('OASIS XML to TTLV', () => {
  it('converts every request of every selected file, and each encodes and decodes back to itself', () => {
    const files = listCaseFiles();
    expect(files.length).toBeGreaterThan(150);
    let requests = 0;
    for (const file of files) {
      const c = loadCase(file);
      expect(c.pairs.length, file).toBeGreaterThan(0);
      for (const pair of c.pairs) {
        const item = materialise(pair.request, (p, type) =>
          p.kind === 'now' ? 1_700_000_000n : type === ItemType.ByteString ? new Uint8Array(8) : type === ItemType.TextString ? 'x' : 0,
        );
        expect(decodeTtlv(encodeTtlv(item)), `${file}: ${pair.operations.join(',')}`).toEqual(item);
        requests++;
      }
    }
    expect(requests).toBeGreaterThan(900);
  });

  it('resolves tags, enumerations by tag, and masks written as names (SKLC-M-1-14 Create)', () => {
    const c = loadCase('profiles-v1.4-os/mandatory/SKLC-M-1-14.xml');
    const req = materialise(c.pairs[0]!.request, () => 'unused');
    expect(req.tag).toBe(Tag.RequestMessage);
    const item = child(req, Tag.BatchItem);
    expect(child(item, Tag.Operation)).toEqual({ tag: Tag.Operation, type: ItemType.Enumeration, value: Operation.Create });
    expect(child(item, Tag.RequestPayload, Tag.ObjectType).value).toBe(ObjectType.SymmetricKey);
    const attrs = (child(item, Tag.RequestPayload, Tag.TemplateAttribute) as Extract<TtlvItem, { type: 1 }>).value;
    const values = attrs.map((a) => child(a, Tag.AttributeValue).value);
    expect(values.slice(0, 3)).toEqual([
      CryptographicAlgorithm.AES,
      256,
      CryptographicUsageMask.Encrypt | CryptographicUsageMask.Decrypt,
    ]);
  });

  it('reads an Attribute Value enumeration through its sibling Attribute Name', () => {
    const item = convert(`<Attribute><AttributeName type="TextString" value="State"/><AttributeValue type="Enumeration" value="PreActive"/></Attribute>`);
    expect(child(item, Tag.AttributeValue).value).toBe(State.PreActive);
    const obj = convert(`<Attribute><AttributeName type="TextString" value="Object Type"/><AttributeValue type="Enumeration" value="SymmetricKey"/></Attribute>`);
    expect(child(obj, Tag.AttributeValue).value).toBe(ObjectType.SymmetricKey);
  });

  it('reads every item type the cases use', () => {
    const item = convert(`<Attributes>
      <ActivationDate type="DateTime" value="2000-02-01T00:00:00+10:00"/>
      <State type="Enumeration" value="0x00000002"/>
      <LeaseTime type="Interval" value="3600"/>
      <Sensitive type="Boolean" value="true"/>
      <Extractable type="Boolean" value="false"/>
      <CryptographicLength type="Integer" value="128"/>
      <UsageLimitsTotal type="LongInteger" value="9007199254740993"/>
      <PrimeFieldSize type="BigInteger" value="FFFFFFFFFFFFFFFF"/>
      <Modulus type="BigInteger" value="0000000000000100"/>
      <KeyMaterial type="ByteString" value="0123abcd"/>
      <AttributeReference type="Enumeration" value="CryptographicUsageMask"/>
      <Comment type="TextString" value=" two  spaces "/>
    </Attributes>`);
    const kids = (item as Extract<TtlvItem, { type: 1 }>).value.map((k) => k.value);
    expect(kids).toEqual([
      BigInt(Date.UTC(2000, 0, 31, 14) / 1000), // +10:00 is 14:00 the day before in UTC
      State.Active,
      3600,
      true,
      false,
      128,
      9007199254740993n,
      -1n, // two's complement
      256n,
      Uint8Array.from([0x01, 0x23, 0xab, 0xcd]),
      Tag.CryptographicUsageMask,
      ' two  spaces ',
    ]);
  });

  it('decodes XML character references into the characters they name (the I18N cases)', () => {
    expect(convert(`<NameValue type="TextString" value="Alpha (&#913;) &#x3A9; &amp; &lt;"/>`).value).toBe('Alpha (\u0391) \u03A9 & <');
    const c = loadCase('testcases-v1.4-cnprd01/TC-I18N-2-14.xml');
    expect(JSON.stringify(c.pairs[0]!.request, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).toContain('\u0391');
  });

  it('keeps placeholders apart from literal values', () => {
    expect(placeholderOf('$NOW')).toEqual({ kind: 'now', offset: 0 });
    expect(placeholderOf('$NOW-3600')).toEqual({ kind: 'now', offset: -3600 });
    expect(placeholderOf('$NOW+20')).toEqual({ kind: 'now', offset: 20 });
    expect(placeholderOf('$UNIQUE_IDENTIFIER_12')).toEqual({ kind: 'bound', name: 'UNIQUE_IDENTIFIER_12' });
    expect(placeholderOf('NOW')).toBeUndefined();
    const item = xmlToCaseItem(parseCaseXml(`<UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>`)) as Extract<CaseItem, { raw: string }>;
    expect(item.value).toEqual({ kind: 'bound', name: 'UNIQUE_IDENTIFIER_0' });
  });

  it('collapses the HTML spacing of the v1.0 cases only when asked', () => {
    const xml = `<AttributeName type="TextString" value="Cryptographic   Usage Mask"/>`;
    expect(convert(xml).value).toBe('Cryptographic   Usage Mask');
    expect(convert(xml, { normaliseText: true }).value).toBe('Cryptographic Usage Mask');
    const mask = convert(`<Attribute><AttributeName type="TextString" value="Cryptographic   Usage Mask"/><AttributeValue type="Integer" value="Encrypt   Decrypt"/></Attribute>`);
    expect(child(mask, Tag.AttributeValue).value).toBe(CryptographicUsageMask.Encrypt | CryptographicUsageMask.Decrypt);
  });

  it('refuses what it cannot resolve, with the element named', () => {
    expect(() => convert(`<NoSuchTag type="Integer" value="1"/>`)).toThrow(/unknown tag <NoSuchTag>/);
    expect(() => convert(`<ObjectType type="Enumeration" value="Spaceship"/>`)).toThrow(/<ObjectType>.*"Spaceship"/);
    expect(() => convert(`<CryptographicUsageMask type="Integer" value="Encrypt Juggle"/>`)).toThrow(/"Juggle" is not a CryptographicUsageMask bit/);
    expect(() => convert(`<CryptographicLength type="Integer" value="many"/>`)).toThrow(CaseFormatError);
    expect(() => convert(`<KeyMaterial type="ByteString" value="abc"/>`)).toThrow(/bad hex/);
    expect(() => parseCaseXml(`<KMIP><A></KMIP>`)).toThrow(/not well-formed/);
    expect(() => casePairs(parseCaseXml(`<KMIP><RequestMessage/><RequestMessage/></KMIP>`))).toThrow(/expected RequestMessage then ResponseMessage/);
  });
});

describe('case selection', () => {
  it('names profiles for the summary table', () => {
    expect(profileOf('SKLC-M-1-14')).toBe('SKLC-M');
    expect(profileOf('BL-M-13-21')).toBe('BL-M');
    expect(profileOf('TC-Q-RNGS-6-14')).toBe('TC-Q');
    expect(profileOf('TC-OFFSET-2-14')).toBe('TC-OFFSET');
  });

  it('judges scope from the requests: crypto services and objects kmipd does not store are not applicable', () => {
    const req = (body: string) => parseCaseXml(`<RequestMessage><BatchItem>${body}</BatchItem></RequestMessage>`);
    expect(notApplicableReason([req(`<Operation type="Enumeration" value="Encrypt"/>`)])).toMatch(/Encrypt/);
    expect(notApplicableReason([req(`<Operation type="Enumeration" value="Register"/><RequestPayload><ObjectType type="Enumeration" value="SplitKey"/></RequestPayload>`)])).toMatch(/SplitKey/);
    expect(notApplicableReason([req(`<Operation type="Enumeration" value="Locate"/><RequestPayload><Attribute><AttributeName type="TextString" value="Object Type"/><AttributeValue type="Enumeration" value="PGPKey"/></Attribute></RequestPayload>`)])).toMatch(/PGPKey/);
    // Registered objects of the Baseline profile are stored now.
    expect(notApplicableReason([req(`<Operation type="Enumeration" value="Register"/><RequestPayload><ObjectType type="Enumeration" value="PrivateKey"/></RequestPayload>`)])).toBeUndefined();
    expect(notApplicableReason([req(`<Operation type="Enumeration" value="Create"/><RequestPayload><ObjectType type="Enumeration" value="SymmetricKey"/></RequestPayload>`)])).toBeUndefined();
    expect(loadCase('profiles-v2.1-os/mandatory/BL-M-12-21.xml').notApplicable).toBeUndefined();
    expect(loadCase('profiles-v1.4-os/mandatory/SKLC-M-2-14.xml').notApplicable).toBeUndefined();
  });
});
