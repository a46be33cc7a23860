// What the server knows about each standard attribute (KMIP 1.x §3, 2.x §4): its item type,
// whether it may hold several instances, and whether a client may set or change it.
import { ItemType } from '../ttlv/types.js';

/**
 * Who may change an attribute, and when (1.4 §3 "Modifiable by client" rows; 2.1 §4 likewise):
 * - server: set only by the server; a client may never supply or change it (read-only);
 * - fixed: a client may set it when the object is created or registered, never afterwards;
 * - preActive: settable at creation, and changeable while the object is Pre-Active;
 * - free: the client may add, modify and delete it while the object is not destroyed.
 */
export type Mutability = 'server' | 'fixed' | 'preActive' | 'free';

export interface AttributeDefinition {
  readonly name: string;
  readonly type: ItemType;
  readonly multi: boolean;
  readonly mutability: Mutability;
  /**
   * First protocol version with this attribute, when its tag is older than the attribute (Key
   * Format Type is a Key Block field from 1.0 but an attribute only from 2.0). Otherwise the
   * tag's own versions decide.
   */
  readonly sinceMajor?: number;
}

const def = (name: string, type: ItemType, mutability: Mutability, multi = false, sinceMajor?: number): AttributeDefinition => ({
  name,
  type,
  multi,
  mutability,
  ...(sinceMajor !== undefined ? { sinceMajor } : {}),
});
const { Structure, Integer, Enumeration, TextString, DateTime, Interval, Boolean, LongInteger } = ItemType;

const DEFINITIONS: readonly AttributeDefinition[] = [
  def('Unique Identifier', TextString, 'server'),
  def('Name', Structure, 'free', true),
  def('Object Type', Enumeration, 'server'),
  def('Cryptographic Algorithm', Enumeration, 'fixed'),
  def('Cryptographic Length', Integer, 'fixed'),
  def('Cryptographic Parameters', Structure, 'free', true),
  def('Cryptographic Domain Parameters', Structure, 'fixed'),
  def('Certificate Type', Enumeration, 'fixed'),
  def('Certificate Length', Integer, 'server'),
  def('Digest', Structure, 'server', true),
  def('Operation Policy Name', TextString, 'free'),
  def('Cryptographic Usage Mask', Integer, 'fixed'),
  def('Lease Time', Interval, 'server'),
  def('Usage Limits', Structure, 'free'),
  def('State', Enumeration, 'server'),
  def('Initial Date', DateTime, 'server'),
  def('Activation Date', DateTime, 'preActive'),
  def('Process Start Date', DateTime, 'preActive'),
  def('Protect Stop Date', DateTime, 'free'),
  def('Deactivation Date', DateTime, 'free'),
  def('Destroy Date', DateTime, 'server'),
  def('Compromise Occurrence Date', DateTime, 'server'),
  def('Compromise Date', DateTime, 'server'),
  def('Revocation Reason', Structure, 'server'),
  def('Archive Date', DateTime, 'server'),
  def('Object Group', TextString, 'free', true),
  def('Fresh', Boolean, 'fixed'),
  def('Link', Structure, 'free', true),
  def('Application Specific Information', Structure, 'free', true),
  def('Contact Information', TextString, 'free'),
  def('Last Change Date', DateTime, 'server'),
  def('Description', TextString, 'free'),
  def('Comment', TextString, 'free'),
  def('Sensitive', Boolean, 'free'),
  def('Always Sensitive', Boolean, 'server'),
  def('Extractable', Boolean, 'free'),
  def('Never Extractable', Boolean, 'server'),
  def('Key Value Present', Boolean, 'server'),
  def('Original Creation Date', DateTime, 'server'),
  def('Random Number Generator', Structure, 'fixed'),
  def('Alternative Name', Structure, 'free', true),
  def('Object Group Member', Enumeration, 'free'),
  def('Key Value Location', Structure, 'free', true),
  def('Usage Limits Count', LongInteger, 'server'),
  def('Key Format Type', Enumeration, 'server', false, 2),
  def('Short Unique Identifier', ItemType.ByteString, 'server'),
  def('Protection Storage Mask', Integer, 'server'),
];

const BY_NAME = new Map(DEFINITIONS.map((d) => [d.name, d]));

/** Custom attributes: "x-" (client-defined) and "y-" (server-defined) prefixes, KMIP 1.x §3.39. */
export function isCustomName(name: string): boolean {
  return name.startsWith('x-') || name.startsWith('y-');
}

/** Custom attributes behave as free, multi-valued, any type. */
const CUSTOM: Omit<AttributeDefinition, 'name' | 'type'> = { multi: true, mutability: 'free' };

export function attributeDefinition(name: string): AttributeDefinition | undefined {
  return BY_NAME.get(name);
}

/** Multiplicity and mutability of any attribute name we accept (standard or custom). */
export function attributeRules(name: string): Omit<AttributeDefinition, 'name' | 'type'> | undefined {
  return BY_NAME.get(name) ?? (isCustomName(name) ? CUSTOM : undefined);
}
