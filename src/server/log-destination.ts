// Log destinations that a full or failing disk cannot turn into a crash or a hang. pino's
// default asynchronous destination re-throws a write error (ENOSPC, EIO) as an uncaught
// exception; the process then starts to exit, pino's exit hook calls sonic-boom's flushSync(),
// and that retries the failing write forever: the server hangs, neither serving nor exiting
// (found by the disk-full test). These destinations call write(2) themselves, on the main thread
// (no pino exit hook involved), report their errors to a callback instead of throwing, and keep
// lines that could not be written in a bounded backlog that drains once writes succeed again;
// past the bound, lines are dropped.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';

export type LogTrouble = { readonly kind: 'error'; readonly code: string | undefined } | { readonly kind: 'drop' };

export type FailSafeDestination = ReturnType<typeof pino.destination>;

/** One synchronous write(2) per line (the server's own log, on stdout). */
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

// A line per write(2) costs ~15 µs of server CPU per request (the audit log). A buffered log file
// instead collects the lines of one turn of the event loop and writes them with one write(2) at
// the end of the turn (setImmediate). What must not be seen before its line is with the kernel
// (an answer and its audit line) is deferred with whenLogsWritten(), which runs it right after
// that write, in the same setImmediate.

const buffered = new Set<BufferedLogFile>();
const deferred: (() => void)[] = [];
let turnScheduled = false;
let exitHooked = false;

function scheduleTurnEnd(): void {
  if (turnScheduled) return;
  turnScheduled = true;
  setImmediate(endOfTurn);
}

function endOfTurn(): void {
  turnScheduled = false;
  for (const file of buffered) file.flush();
  // Lines logged by these callbacks go in the next turn's write.
  for (const run of deferred.splice(0)) run();
}

/**
 * Runs `fn` once every line written so far to every buffered log file has been handed to the
 * kernel (or, if the disk refused it, is in that file's backlog and reported). `fn` must not throw.
 */
export function whenLogsWritten(fn: () => void): void {
  deferred.push(fn);
  scheduleTurnEnd();
}

/** A log file written once per turn of the event loop; a pino destination. */
export class BufferedLogFile {
  private fd: number;
  private lines: string[] = [];
  /** The bytes of an earlier write that the file refused (partly written, or not at all). */
  private refused: Buffer | undefined;
  /** Bytes held in memory: `lines` and `refused`. */
  private held = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly maxBacklogBytes: number,
    private readonly onTrouble: (t: LogTrouble) => void = () => undefined,
    private readonly mode = 0o600,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a', mode);
    if (!exitHooked) process.once('exit', flushAllAtExit);
    exitHooked = true;
    buffered.add(this);
  }

  /** pino's destination interface: one line, newline included. Never throws. */
  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.closed || this.held + bytes > this.maxBacklogBytes) {
      this.onTrouble({ kind: 'drop' });
      return;
    }
    this.lines.push(line);
    this.held += bytes;
    scheduleTurnEnd();
  }

  /** Hands every held line to the kernel; on failure they stay held and the error is reported. */
  flush(): boolean {
    if (this.held === 0) return true;
    // The refused bytes go first, alone: while the disk is full, a retry costs one short write,
    // not a copy of the whole backlog.
    if (this.refused) {
      this.refused = this.writeOut(this.refused);
      if (this.refused) return false;
    }
    if (this.lines.length > 0) {
      const out = Buffer.from(this.lines.length === 1 ? this.lines[0]! : this.lines.join(''));
      this.lines = [];
      this.refused = this.writeOut(out);
    }
    this.held = this.refused?.length ?? 0;
    return this.refused === undefined;
  }

  /** Writes `buf` to the end; returns what the file refused. */
  private writeOut(buf: Buffer): Buffer | undefined {
    let rest = buf;
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(this.fd, rest));
      } catch (err) {
        this.onTrouble({ kind: 'error', code: (err as NodeJS.ErrnoException).code });
        return rest;
      }
    }
    return undefined;
  }

  /** Opens the file again by its path (logrotate renamed it); earlier lines go to the old file. */
  reopen(): void {
    if (this.closed) return;
    this.flush();
    let fd: number;
    try {
      fd = openSync(this.path, 'a', this.mode);
    } catch (err) {
      // Keep writing to the file we have rather than lose lines.
      this.onTrouble({ kind: 'error', code: (err as NodeJS.ErrnoException).code });
      return;
    }
    const old = this.fd;
    this.fd = fd;
    closeSafely(old);
  }

  /** Writes what it can of the held lines and closes the file; later lines are dropped. */
  end(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    buffered.delete(this);
    closeSafely(this.fd);
  }
}

// A crash between a line and the end of its turn must not lose the line. One attempt per file
// (no retry loop), so a failing disk cannot hang the exit.
function flushAllAtExit(): void {
  for (const file of buffered) file.flush();
}

function closeSafely(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing was left to write to it
  }
}
