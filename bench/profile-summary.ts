// Reads a V8 .cpuprofile (node --cpu-prof) and tells where the time went: self time per function
// and per source file, as shares of the non-idle samples.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  readonly what: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  readonly idleMs: number;
  /** Self time: where the CPU actually was (native calls appear as themselves). */
  readonly byFunction: ProfileLine[];
  readonly byFile: ProfileLine[];
  /**
   * Each sample charged to the innermost kmipd function on its stack (native calls such as
   * PKCS#11, SQLite or TLS writes are charged to the kmipd code that made them); samples with no
   * kmipd frame are grouped by where they were.
   */
  readonly byKmipdCaller: ProfileLine[];
}

function where(url: string, root: string): string {
  if (!url) return '(native)';
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  if (path.startsWith('node:')) return path;
  const rel = relative(root, path);
  const nm = rel.lastIndexOf('node_modules/');
  return nm >= 0 ? rel.slice(nm + 'node_modules/'.length) : rel;
}

/** V8's pseudo-frames: (root), (program), (idle), (garbage collector). */
function isVmEntry(n: ProfileNode): boolean {
  return n.callFrame.url === '' && /^\(.*\)$/.test(n.callFrame.functionName);
}

export function summarizeProfile(file: string, root: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const isOurs = (n: ProfileNode) => /\/(dist|src)\//.test(n.callFrame.url) && !n.callFrame.url.includes('node_modules');
  const label = (n: ProfileNode) => (isVmEntry(n) ? n.callFrame.functionName : `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url, root)}:${n.callFrame.lineNumber + 1}`);
  /** The innermost kmipd frame above a sample, or a label for the sample's own frame. */
  const callerOf = (id: number): string => {
    const self = byId.get(id)!;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (isOurs(n)) return label(n);
    }
    return isVmEntry(self) ? self.callFrame.functionName : `outside kmipd: ${where(self.callFrame.url, root)}`;
  };
  const callers = new Map<string, number>();
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute it to the sample's node.
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const caller = callerOf(id);
    callers.set(caller, (callers.get(caller) ?? 0) + us);
    const key = label(n);
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fileKey = isVmEntry(n) ? n.callFrame.functionName : where(n.callFrame.url, root);
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const lines = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([what, us]) => ({ what, selfMs: Math.round(us / 1000), share: total ? us / total : 0 }));
  return {
    file,
    totalMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    byFunction: lines(fn),
    byFile: lines(files),
    byKmipdCaller: lines(callers),
  };
}

export function formatProfile(s: ProfileSummary, title: string): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const out = [`#### ${title}`, '', `busy ${s.totalMs} ms, idle ${s.idleMs} ms (\`${s.file}\`)`, '', '| self time | share | function |', '|---:|---:|---|'];
  for (const l of s.byFunction) out.push(`| ${l.selfMs} ms | ${pct(l.share)} | \`${l.what}\` |`);
  out.push('', '| time | share | innermost kmipd function on the stack |', '|---:|---:|---|');
  for (const l of s.byKmipdCaller) out.push(`| ${l.selfMs} ms | ${pct(l.share)} | \`${l.what}\` |`);
  out.push('', '| self time | share | file |', '|---:|---:|---|');
  for (const l of s.byFile) out.push(`| ${l.selfMs} ms | ${pct(l.share)} | \`${l.what}\` |`);
  return out.join('\n');
}
