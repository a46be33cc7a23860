// Log destinations that a full or failing disk cannot turn into a crash or a hang. pino's
// default asynchronous destination re-throws a write error (ENOSPC, EIO) as an uncaught
// exception; the process then starts to exit, pino's exit hook calls sonic-boom's flushSync(),
// and that retries the failing write forever: the server hangs, neither serving nor exiting
// (found by the disk-full test). These destinations are synchronous (a line is with the kernel
// before the answer it records is sent, and nothing is left for an exit hook), report their
// errors to a callback instead of throwing, and keep lines that could not be written in a bounded
// backlog that drains once writes succeed again; past the bound, lines are dropped.
import { pino } from 'pino';

export type LogTrouble = { readonly kind: 'error'; readonly code: string | undefined } | { readonly kind: 'drop' };

export type FailSafeDestination = ReturnType<typeof pino.destination>;

export function failSafeDestination(
  target: { readonly fd: number } | { readonly path: string; readonly mode?: number },
  maxBacklogBytes: number,
  onTrouble: (t: LogTrouble) => void = () => undefined,
): FailSafeDestination {
  const dest = pino.destination({
    ...('fd' in target ? { fd: target.fd } : { dest: target.path, mkdir: true, mode: target.mode ?? 0o600 }),
    sync: true,
    maxLength: maxBacklogBytes,
  });
  dest.on('error', (err: NodeJS.ErrnoException) => onTrouble({ kind: 'error', code: err.code }));
  dest.on('drop', () => onTrouble({ kind: 'drop' }));
  return dest;
}
