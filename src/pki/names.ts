import { isIP } from 'node:net';

import { PkiError } from './errors.js';

// Client names become file names (NAME.crt/NAME.key) and the certificate CN, so only a
// conservative set is allowed. A leading '.' or '-' is refused too: that rules out '.', '..',
// hidden files and names that a shell tool would read as an option.
const CLIENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

export function assertValidClientName(name: string): void {
  if (typeof name !== 'string' || !CLIENT_NAME.test(name)) {
    throw new PkiError(
      'INVALID_NAME',
      `invalid client name ${JSON.stringify(name)}: use 1-64 characters from A-Z a-z 0-9 . _ -, not starting with '.' or '-'`,
    );
  }
}

const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** Hostname as allowed in a dNSName SAN (optionally one leading wildcard label). */
export function isValidDnsName(name: string): boolean {
  const host = name.endsWith('.') ? name.slice(0, -1) : name;
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  if (labels[0] === '*' && labels.length > 1) labels.shift();
  // An all-numeric name would be an IP address in disguise.
  if (isIP(host) !== 0) return false;
  return labels.every((l) => DNS_LABEL.test(l));
}

/** Network-order bytes for an iPAddress SAN. Own parser: forge's mishandles IPv4-mapped IPv6. */
export function ipToBytes(ip: string): Uint8Array {
  const family = isIP(ip);
  if (family === 4) return Uint8Array.from(ip.split('.').map(Number));
  if (family !== 6 || ip.includes('%')) {
    throw new PkiError('INVALID_ARGUMENT', `invalid IP address for a certificate: ${JSON.stringify(ip)}`);
  }
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // a:b::1.2.3.4 -> the dotted quad is the last two 16-bit groups.
    const q = tail.split('.').map(Number);
    const hi = ((q[0] ?? 0) << 8) | (q[1] ?? 0);
    const lo = ((q[2] ?? 0) << 8) | (q[3] ?? 0);
    text = `${text.slice(0, lastColon + 1)}${hi.toString(16)}:${lo.toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(fill).fill('0'), ...restGroups];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}
