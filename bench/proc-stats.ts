// What a server process costs, read from /proc: resident memory and CPU time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface MemoryUsage {
  /** Resident set size now, MiB. */
  readonly rssMiB: number;
  /** Peak resident set size, MiB. */
  readonly hwmMiB: number;
}

export function memoryOf(pid: number): MemoryUsage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

/** Resident memory of the process and its descendants (serve processes under a primary), summed. */
export function treeMemoryOf(pid: number): MemoryUsage {
  let rssMiB = 0;
  let hwmMiB = 0;
  forEachInTree(pid, (p) => {
    const m = memoryOf(p);
    rssMiB += m.rssMiB;
    hwmMiB += m.hwmMiB;
  });
  return { rssMiB, hwmMiB };
}

/** User + system CPU time the process has used so far, in ms. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined; // gone meanwhile
  }
}

/** The process and every process below it (PyKMIP's server runs helper processes). */
export function processTree(pid: number): number[] {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const children = new Map<number, number[]>();
  for (const p of all) {
    const ppid = parentOf(p);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), p]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** CPU time of the process and its descendants, in ms (a descendant that exited meanwhile is not counted). */
export function treeCpuTimeMs(pid: number): number {
  let total = 0;
  forEachInTree(pid, (p) => (total += cpuTimeMs(p)));
  return total;
}

/** Calls `read` for the process and each descendant; one that exited before it was read is skipped. */
function forEachInTree(pid: number, read: (p: number) => void): void {
  for (const p of processTree(pid)) {
    try {
      read(p);
    } catch {
      // exited between listing and reading
    }
  }
}

/** Everything the benchmark states about the machine it ran on. */
export interface MachineDescription {
  readonly cpus: number;
  readonly model: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly kernel: string;
  /** What an idle CPU does (cpuIdleDescription); absent where Linux does not say. */
  readonly idle?: string;
  /** Scheduler settings of this kernel that upstream Linux lacks (schedulerDescription); absent where there are none. */
  readonly scheduler?: string;
}

export function machineDescription(): MachineDescription {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? NaN);
  const kernel = readTrimmed('/proc/sys/kernel/osrelease') ?? ''; // empty where not Linux
  const idle = cpuIdleDescription();
  const scheduler = schedulerDescription();
  return {
    cpus: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    model: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryGiB: Math.round((memKiB / 1024 / 1024) * 10) / 10,
    node: process.version,
    kernel,
    ...(idle === undefined ? {} : { idle }),
    ...(scheduler === undefined ? {} : { scheduler }),
  };
}

/**
 * A scheduler setting that upstream Linux does not have, where the kernel has one: the 2 vCPU AMD
 * guest of the twenty-second and twenty-third rounds runs with kernel.sched_vcpu_pack 15 (read-only
 * from inside the guest, undocumented), and there the server's threads waited in the run queue a
 * fifth of the time with a vCPU idle. Stated so that a report says when two machines schedule
 * differently; what the setting does is not known.
 */
export function schedulerDescription(proc = '/proc'): string | undefined {
  const pack = readTrimmed(join(proc, 'sys/kernel/sched_vcpu_pack'));
  return pack === undefined ? undefined : `kernel.sched_vcpu_pack ${pack} (a setting of this kernel that upstream Linux lacks)`;
}

/** A one-line /proc or /sys file, or undefined where it does not exist. */
function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The cpuidle driver, and for a KVM guest's haltpoll driver how long an idle vCPU polls before it
 * halts. It moves the figures: a thread that wakes a halted vCPU (an answer written to a client on
 * loopback, a batch handed to the store's thread) pays for an exit to the host, and a polling vCPU
 * is woken without one. On the bench machine, booted with polling off, 200 µs of it gave ~6 % more
 * Creates and ~3 % more Gets per second, medians of five alternated pairs (bench/RESULTS.md,
 * nineteenth round).
 */
export function cpuIdleDescription(sys = '/sys'): string | undefined {
  const driver = readTrimmed(join(sys, 'devices/system/cpu/cpuidle/current_driver'));
  if (!driver) return undefined;
  if (driver !== 'haltpoll') return `cpuidle driver ${driver}`;
  const ns = Number(readTrimmed(join(sys, 'module/haltpoll/parameters/guest_halt_poll_ns')));
  if (!Number.isFinite(ns)) return 'cpuidle driver haltpoll';
  return ns === 0 ? 'cpuidle driver haltpoll, guest_halt_poll_ns 0 (an idle vCPU halts at once)' : `cpuidle driver haltpoll, guest_halt_poll_ns ${ns} (an idle vCPU polls up to ${ns / 1000} µs before it halts)`;
}

/** 1-, 5- and 15-minute load averages: other work on the machine shows here. */
export function loadAverage(): [number, number, number] {
  const [a = NaN, b = NaN, c = NaN] = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  return [a, b, c];
}
