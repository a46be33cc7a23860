// A strict reader of the Prometheus text exposition format (0.0.4), enough for the tests to read
// values by name and labels instead of grepping: a malformed line fails the test.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** # TYPE of each metric family. */
  readonly types: ReadonlyMap<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,?)/;

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(v: string, line: string): number {
  // Go's ParseFloat, which Prometheus uses, takes these case-insensitively (prom-client writes "Nan").
  if (/^\+?inf$/i.test(v)) return Infinity;
  if (/^-inf$/i.test(v)) return -Infinity;
  if (/^nan$/i.test(v)) return NaN;
  const n = Number(v);
  if (v === '' || Number.isNaN(n)) throw new Error(`bad sample value in ${JSON.stringify(line)}`);
  return n;
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m) types.set(m[1]!, m[2]!);
      else if (!/^# HELP \S+ /.test(line)) throw new Error(`unexpected comment ${JSON.stringify(line)}`);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) throw new Error(`no metric name in ${JSON.stringify(line)}`);
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      while (!rest.startsWith('}')) {
        const m = LABEL.exec(rest);
        if (!m) throw new Error(`bad labels in ${JSON.stringify(line)}`);
        labels[m[1]!] = unescape(m[2]!);
        rest = rest.slice(m[0].length);
        if (m[3] !== ',' && !rest.startsWith('}')) throw new Error(`bad labels in ${JSON.stringify(line)}`);
      }
      rest = rest.slice(1);
    }
    const parts = rest.trim().split(/\s+/);
    if (parts.length < 1 || parts.length > 2) throw new Error(`bad sample ${JSON.stringify(line)}`);
    samples.push({ name, labels, value: parseValue(parts[0]!, line) });
  }
  return { samples, types };
}

/** The one sample with this name and exactly these labels (le excluded unless given), or undefined. */
export function sample(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = e.samples.filter(
    (s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

/** Every sample of a name, for label-set checks. */
export function samplesOf(e: Exposition, name: string): Sample[] {
  return e.samples.filter((s) => s.name === name);
}
