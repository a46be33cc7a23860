// Group commit off the event loop for SQLite in WAL mode.
//
// With synchronous=FULL every commit fsyncs the WAL inside better-sqlite3's synchronous call, so the
// whole server waits for the disk (36 % of the server's time under Create, when Creates committed
// on the serving connection; they now have a thread of their own, sqlite-insert-writer.ts). Instead,
// an update commits with synchronous=NORMAL (frames written to the -wal file, no fsync) and its
// callers are answered only after an fdatasync of the -wal file, run on libuv's thread pool while
// the event loop serves others. That fdatasync covers every frame written before it started, so it
// makes the commit exactly as durable as FULL would have (SQLite itself syncs the WAL before any
// checkpoint copies it into the database, and the database after, in NORMAL mode too).
//
// Commits that land while a sync is in flight are not covered by it (their frames may have been
// written after it started): they share the next one. So there is at most one sync in flight and
// one waiting, whatever the number of committers.
import { fdatasync, openSync, closeSync } from 'node:fs';

export type FdatasyncFn = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void;

export class WalSync {
  private fd: number | undefined;
  private inFlight: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  /** `walPath`: the database's "-wal" file. `sync` is fs.fdatasync except in tests of the ordering. */
  constructor(
    private readonly walPath: string,
    private readonly sync: FdatasyncFn = fdatasync,
  ) {}

  /** Resolves once everything written to the WAL before this call is on disk. */
  durable(): Promise<void> {
    if (!this.inFlight) return this.start();
    // The running sync may have begun before our frames were written: wait for the one after it.
    this.next ??= this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }

  /** Waits for the syncs already asked for (their outcome goes to their own callers). */
  async settled(): Promise<void> {
    while (this.inFlight || this.next) await (this.next ?? this.inFlight)!.catch(() => undefined);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private start(): Promise<void> {
    const run = new Promise<void>((resolve, reject) => {
      // Opened on first use: the -wal file exists once the first transaction has committed, and
      // lives as long as any connection (ours included) keeps the database open.
      this.fd ??= openSync(this.walPath, 'r');
      this.sync(this.fd, (err) => (err ? reject(err) : resolve()));
    });
    this.inFlight = run;
    const clear = () => {
      if (this.inFlight === run) this.inFlight = undefined;
    };
    run.then(clear, clear);
    return run;
  }
}
