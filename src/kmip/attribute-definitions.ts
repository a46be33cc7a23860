// What the server knows about each standard attribute (KMIP 1.x §3, 2.x §4): its item type,
// whether it may hold several instances, and whether a client may set or change it.
import { ItemType } from '../ttlv/types.js';

export interface AttributeDefinition {
  readonly name: string;
  readonly type: ItemType;
  readonly multi: boolean;
  /** Set only by the server; a client may not supply it on Create/Register or modify it. */
  readonly serverOnly: boolean;
}

const def = (name: string, type: ItemType, multi = false, serverOnly = false): AttributeDefinition => ({ name, type, multi, serverOnly });
const { Structure, Integer, Enumeration, TextString, DateTime, Interval, Boolean, LongInteger } = ItemType;

const DEFINITIONS: readonly AttributeDefinition[] = [
  def('Unique Identifier', TextString, false, true),
  def('Name', Structure, true),
  def('Object Type', Enumeration, false, true),
  def('Cryptographic Algorithm', Enumeration),
  def('Cryptographic Length', Integer),
  def('Cryptographic Parameters', Structure, true),
  def('Cryptographic Domain Parameters', Structure),
  def('Certificate Type', Enumeration, false, true),
  def('Digest', Structure, true, true),
  def('Operation Policy Name', TextString),
  def('Cryptographic Usage Mask', Integer),
  def('Lease Time', Interval, false, true),
  def('Usage Limits', Structure),
  def('State', Enumeration, false, true),
  def('Initial Date', DateTime, false, true),
  def('Activation Date', DateTime),
  def('Process Start Date', DateTime),
  def('Protect Stop Date', DateTime),
  def('Deactivation Date', DateTime),
  def('Destroy Date', DateTime, false, true),
  def('Compromise Occurrence Date', DateTime, false, true),
  def('Compromise Date', DateTime, false, true),
  def('Revocation Reason', Structure, false, true),
  def('Archive Date', DateTime, false, true),
  def('Object Group', TextString, true),
  def('Fresh', Boolean),
  def('Link', Structure, true),
  def('Application Specific Information', Structure, true),
  def('Contact Information', TextString),
  def('Last Change Date', DateTime, false, true),
  def('Description', TextString),
  def('Comment', TextString),
  def('Sensitive', Boolean),
  def('Always Sensitive', Boolean, false, true),
  def('Extractable', Boolean),
  def('Never Extractable', Boolean, false, true),
  def('Key Value Present', Boolean, false, true),
  def('Original Creation Date', DateTime, false, true),
  def('Random Number Generator', Structure, false, true),
  def('Alternative Name', Structure, true),
  def('Object Group Member', Enumeration),
  def('Key Value Location', Structure, true),
  def('Usage Limits Count', LongInteger),
];

const BY_NAME = new Map(DEFINITIONS.map((d) => [d.name, d]));

/** Custom attributes: "x-" (client-defined) and "y-" (server-defined) prefixes, KMIP 1.x §3.39. */
export function isCustomName(name: string): boolean {
  return name.startsWith('x-') || name.startsWith('y-');
}

export function attributeDefinition(name: string): AttributeDefinition | undefined {
  return BY_NAME.get(name);
}
