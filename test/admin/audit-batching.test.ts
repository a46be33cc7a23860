// The buffered audit log file: the lines of one turn of the event loop share one write(2), what
// waits on whenLogsWritten() runs only once they are in the file, and a refusing disk (/dev/full)
// neither throws nor holds back the waiters; its backlog is bounded, and drops are counted.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { BufferedLogFile, whenLogsWritten, type LogTrouble } from '../../src/server/log-destination.js';
import { tempDir } from '../helpers/kmipd.js';

const turn = () => new Promise<void>((resolve) => whenLogsWritten(resolve));
let dir: ReturnType<typeof tempDir> | undefined;
afterEach(() => dir?.remove());

describe('BufferedLogFile', () => {
  it('writes the lines of a turn at its end, before the deferred work of that turn runs', async () => {
    dir = tempDir();
    const path = join(dir.path, 'sub', 'audit.log');
    const file = new BufferedLogFile(path, 1 << 20);
    const log = pino({ base: undefined }, file);
    const seen: string[][] = [];
    for (let i = 0; i < 50; i++) {
      log.info({ i }, 'line');
      whenLogsWritten(() => seen.push(readFileSync(path, 'utf8').trim().split('\n')));
    }
    expect(readFileSync(path, 'utf8')).toBe(''); // nothing written during the turn
    await turn();
    expect(seen).toHaveLength(50);
    for (const lines of seen) expect(lines.map((l) => JSON.parse(l).i)).toEqual([...Array(50).keys()]);
    file.end();
  });

  it('keeps every turn in order across many turns, and end() writes what is still held', async () => {
    dir = tempDir();
    const path = join(dir.path, 'audit.log');
    const file = new BufferedLogFile(path, 1 << 20);
    for (let t = 0; t < 20; t++) {
      for (let i = 0; i < 10; i++) file.write(`${t * 10 + i}\n`);
      const last = await new Promise<string | undefined>((resolve) => whenLogsWritten(() => resolve(readFileSync(path, 'utf8').trim().split('\n').at(-1))));
      expect(last).toBe(String(t * 10 + 9));
    }
    file.write('last\n');
    file.end();
    expect(readFileSync(path, 'utf8').trim().split('\n')).toEqual([...[...Array(200).keys()].map(String), 'last']);
    file.write('after end\n'); // dropped, not thrown
    await turn();
    expect(readFileSync(path, 'utf8')).not.toContain('after end');
  });

  it('reopen() sends earlier lines to the renamed file and later ones to a new file', async () => {
    dir = tempDir();
    const path = join(dir.path, 'audit.log');
    const file = new BufferedLogFile(path, 1 << 20);
    file.write('before\n');
    renameSync(path, `${path}.1`);
    file.reopen();
    file.write('after\n');
    await turn();
    expect(readFileSync(`${path}.1`, 'utf8')).toBe('before\n');
    expect(readFileSync(path, 'utf8')).toBe('after\n');
    file.end();
  });

  it('on a full disk reports errors, still runs the waiters, bounds its backlog and counts drops', async () => {
    if (!existsSync('/dev/full')) throw new Error('this test needs /dev/full');
    const trouble: LogTrouble[] = [];
    const file = new BufferedLogFile('/dev/full', 1000, (t) => trouble.push(t));
    const line = `${'x'.repeat(99)}\n`; // 100 bytes
    let ran = 0;
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 6; i++) expect(() => file.write(line)).not.toThrow();
      whenLogsWritten(() => (ran += 1));
      await turn();
    }
    expect(ran).toBe(3);
    // 1000 bytes held: 10 lines kept, the other 8 dropped; each turn's write failed with ENOSPC.
    expect(trouble.filter((t) => t.kind === 'drop')).toHaveLength(8);
    expect(trouble.filter((t) => t.kind === 'error').length).toBeGreaterThanOrEqual(3);
    expect(trouble.find((t) => t.kind === 'error')).toEqual({ kind: 'error', code: 'ENOSPC' });
    expect(file.flush()).toBe(false);
    expect(() => file.end()).not.toThrow();
  });
});
