// Plain-text tables and values for operator output. JSON output (--json) is for scripts.

/** Left-aligned columns separated by two spaces; a header row, no borders. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** "2026-01-31T12:00:00Z" (seconds precision), or "-" */
export function when(d: Date | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
}

/** How the CLI reports an error that ends a command. */
export function errorLine(err: unknown): string {
  return `kmipd: ${err instanceof Error ? err.message : String(err)}`;
}

/** Parses a positive integer option, with the option's name in the error. */
export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1 || n > max) throw new Error(`${name} must be an integer from 1 to ${max}`);
    return n;
  };
}

export function nonNegativeInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new Error(`${name} must be a whole number`);
    return n;
  };
}
