// KMIP protocol versions this server speaks, newest first (Discover Versions answers in this order).

export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

export const SUPPORTED_VERSIONS: readonly ProtocolVersion[] = [
  { major: 2, minor: 1 },
  { major: 2, minor: 0 },
  { major: 1, minor: 4 },
  { major: 1, minor: 3 },
  { major: 1, minor: 2 },
  { major: 1, minor: 1 },
  { major: 1, minor: 0 },
];

export function compareVersions(a: ProtocolVersion, b: ProtocolVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

export function isSupported(v: ProtocolVersion): boolean {
  return SUPPORTED_VERSIONS.some((s) => s.major === v.major && s.minor === v.minor);
}

/** KMIP 2.x replaced Template-Attribute / Attribute with the Attributes structure, among others. */
export function isV2(v: ProtocolVersion): boolean {
  return v.major >= 2;
}

export function formatVersion(v: ProtocolVersion): string {
  return `${v.major}.${v.minor}`;
}

/** Bit index of a version in the generated registry's version masks (REGISTRY_VERSIONS order). */
export function registryVersionBit(v: ProtocolVersion): number {
  const order = ['1.0', '1.1', '1.2', '1.3', '1.4', '2.0', '2.1'];
  const i = order.indexOf(formatVersion(v));
  return i < 0 ? 0 : 1 << i;
}
