// Runs a PyKMIP script (Debian's python3-pykmip, so /usr/bin/python3, never a pyenv shim).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, type ClientBundle } from './kmipd.js';

const run = promisify(execFile);
export const SYSTEM_PYTHON = '/usr/bin/python3';

export async function runPykmip<T>(script: string, port: number, client: ClientBundle, ...args: string[]): Promise<T> {
  const { stdout } = await run(
    SYSTEM_PYTHON,
    [join(ROOT, 'test/pykmip', script), '127.0.0.1', String(port), client.cert, client.key, client.ca, ...args],
    { cwd: ROOT, maxBuffer: 16 << 20, timeout: 120_000 },
  );
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}
