// `kmipd serve` started through a wrapper command (here: a private mount namespace with a small
// tmpfs), otherwise like test/helpers/kmipd.ts startServe: ephemeral port, JSON logs collected.
import { spawn } from 'node:child_process';
import { KMIPD, ROOT, type ServerProcess } from '../helpers/kmipd.js';

export async function startServeWrapped(prefix: readonly string[], data: string, extra: readonly string[] = []): Promise<ServerProcess> {
  const [cmd, ...args] = [...prefix, process.execPath, KMIPD, 'serve', '--data', data, '--listen', '127.0.0.1:0', ...extra];
  const proc = spawn(cmd!, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`kmipd serve did not start:\n${logs.join('\n')}`)), 30_000);
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === 'kmipd listening' && rec.port) {
            clearTimeout(timer);
            resolve(rec.port);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    void exited.then((code) => reject(new Error(`kmipd serve exited with ${code}:\n${logs.join('\n')}`)));
  });
  return {
    port,
    proc,
    logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}
