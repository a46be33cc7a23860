// The figures every hostile test file reports; no vitest import, so the global setup can use it.

export interface Tally {
  malformedInputs: number;
  crashes: number;
  hangs: number;
  keysAcknowledged: number;
  keysLost: number;
}

export const newTally = (): Tally => ({ malformedInputs: 0, crashes: 0, hangs: 0, keysAcknowledged: 0, keysLost: 0 });

export function formatFigures(t: Tally): string {
  return (
    `${t.malformedInputs} malformed inputs tried, ${t.crashes} crashes, ${t.hangs} hangs, ` +
    `${t.keysLost} acknowledged keys lost (of ${t.keysAcknowledged} checked)`
  );
}
