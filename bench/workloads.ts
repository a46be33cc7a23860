// Named operation mixes. Each connection cycles through its workload's sequence (starting at a
// random step), picking the addressed key uniformly at random among the stored ones.
import { isOpKind, type OpKind } from './requests.js';

export interface Workload {
  readonly name: string;
  readonly sequence: readonly OpKind[];
}

export const WORKLOADS: Readonly<Record<string, Workload>> = {
  // The floor: TLS, framing, dispatch and the audit line, with no store or HSM work.
  discover: { name: 'discover', sequence: ['dv'] },
  get: { name: 'get', sequence: ['get'] },
  create: { name: 'create', sequence: ['create'] },
  'get-attributes': { name: 'get-attributes', sequence: ['get-attributes'] },
  locate: { name: 'locate', sequence: ['locate'] },
  // What vCenter does at a host boot storm: a Discover Versions health check, then the Get.
  vcenter: { name: 'vcenter', sequence: ['dv', 'get'] },
  // What vCenter does for each VM or disk it encrypts: Create a key, then Get it (its first Get).
  'new-key': { name: 'new-key', sequence: ['create', 'get-new'] },
  // A mixed day: mostly reads, some lookups, a few new keys.
  mixed: { name: 'mixed', sequence: ['get', 'get-attributes', 'get', 'locate', 'get', 'dv', 'get', 'create'] },
};

// Read-only workloads first: Create grows the store, and Locate's cost depends on its size.
export const DEFAULT_WORKLOADS = ['discover', 'get', 'get-attributes', 'locate', 'vcenter', 'create', 'new-key', 'mixed'];

/** A named workload, or a custom mix "name=kind:weight+kind:weight" (e.g. "reads=get:8+locate:1"). */
export function parseWorkload(spec: string): Workload {
  const named = WORKLOADS[spec];
  if (named) return named;
  const m = /^([\w-]+)=(.+)$/.exec(spec);
  if (!m) throw new Error(`unknown workload ${JSON.stringify(spec)} (known: ${Object.keys(WORKLOADS).join(', ')}, or NAME=kind:weight+kind:weight)`);
  const sequence: OpKind[] = [];
  for (const part of m[2]!.split('+')) {
    const [kind, weight = '1'] = part.split(':');
    const n = Number(weight);
    if (!kind || !isOpKind(kind) || !Number.isInteger(n) || n < 1 || n > 100) throw new Error(`bad mix element ${JSON.stringify(part)} in ${spec}`);
    for (let i = 0; i < n; i++) sequence.push(kind);
  }
  return { name: m[1]!, sequence };
}

export function needsKeys(w: Workload): boolean {
  return w.sequence.some((k) => k !== 'create' && k !== 'dv' && k !== 'get-new');
}
