// Which CPUs the servers under test and the load generator may run on (`--server-cpus`,
// `--generator-cpus`), set with util-linux's taskset and read back from /proc.
//
// The targets are for 2 cores shared by the server and the load generator. On the 2 vCPU
// bench guests the generator takes 0.3 (Create) to 0.8 (Discover Versions) of a core
// (bench/RESULTS.md, twenty-fourth round), so a run on a larger machine with the server on two
// CPUs of its own says how much of a shortfall is the sharing. The report then says that the
// setting differs from the issue's.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU numbers, ascending, no duplicates, none negative. */
export type CpuSet = readonly number[];

export interface CpuPlacement {
  /** kmipd's and PyKMIP's processes (every thread, and the processes they start). */
  readonly servers?: CpuSet | undefined;
  /** The load-generator processes, and the bench's own process that forks them. */
  readonly generator?: CpuSet | undefined;
}

/** A list as taskset and /proc write it ("0,2-3"), as a CpuSet. */
export function parseCpuList(list: string): CpuSet {
  const cpus = new Set<number>();
  for (const part of list.split(',').map((p) => p.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`not a CPU list: ${JSON.stringify(list)} (write it as taskset does, e.g. 0,1 or 2-3)`);
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (last < first) throw new Error(`not a CPU list: ${JSON.stringify(list)} (${part} runs backwards)`);
    for (let c = first; c <= last; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The CpuSet in taskset's list form, ranges joined ("0-3,6"). */
export function cpuList(cpus: CpuSet): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The CPUs `pid` may run on (its main thread's mask), from /proc. */
export function allowedCpus(pid: number | 'self', proc = '/proc'): CpuSet {
  const status = readFileSync(`${proc}/${pid}/status`, 'utf8');
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
  if (list === undefined) throw new Error(`no Cpus_allowed_list in ${proc}/${pid}/status`);
  return parseCpuList(list);
}

/**
 * Checks a placement against the CPUs this process may use (a CPU outside them does not exist
 * here, or a cgroup withholds it) before anything starts, so that a typo fails the run at once.
 */
export function checkPlacement(p: CpuPlacement, available: CpuSet = allowedCpus('self')): void {
  for (const [flag, cpus] of [['--server-cpus', p.servers], ['--generator-cpus', p.generator]] as const) {
    if (cpus === undefined) continue;
    const missing = cpus.filter((c) => !available.includes(c));
    if (cpus.length === 0 || missing.length > 0) {
      throw new Error(`${flag} ${cpuList(cpus)}: CPU ${cpuList(missing)} is not among this machine's usable CPUs (${cpuList(available)})`);
    }
  }
}

/** `command args` started through taskset on `cpus`, or unchanged without them: taskset execs it, so the pid is the command's. */
export function onCpus(cpus: CpuSet | undefined, command: string, args: readonly string[]): [string, string[]] {
  return cpus === undefined ? [command, [...args]] : ['taskset', ['-c', cpuList(cpus), command, ...args]];
}

/**
 * Moves every thread of this process onto `cpus`; what it forks afterwards (the load generator's
 * processes) inherits the mask. Read back, so a run never reports a placement it did not have.
 */
export function pinThisProcess(cpus: CpuSet): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpuList(cpus), String(process.pid)], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`taskset could not pin the bench to CPUs ${cpuList(cpus)} (taskset comes with util-linux): ${(err as Error).message}`);
  }
  expectCpus('the bench process', 'self', cpus);
}

/** Throws unless `pid` runs on exactly `cpus`. */
export function expectCpus(what: string, pid: number | 'self', cpus: CpuSet): void {
  const got = allowedCpus(pid);
  if (cpuList(got) !== cpuList(cpus)) throw new Error(`${what} runs on CPUs ${cpuList(got)}, not ${cpuList(cpus)} as asked`);
}

/**
 * The report's line on where things ran, and, unless that is the setting (kmipd on 2 CPUs,
 * the load generator on those same CPUs), a sentence that says how it differs. `available`: the
 * CPUs the bench could use before it pinned anything.
 */
export function placementDescription(p: CpuPlacement, available: CpuSet): { readonly line: string; readonly departs?: string } {
  const servers = p.servers ?? available;
  const generator = p.generator ?? available;
  const where = (cpus: CpuSet) => `CPU${cpus.length === 1 ? '' : 's'} ${cpuList(cpus)}`;
  const line =
    p.servers === undefined && p.generator === undefined
      ? `servers and load generator share ${where(available)} (not pinned)`
      : `servers on ${where(servers)}, load generator on ${where(generator)} (taskset; read back from /proc)`;
  const confined = generator.every((c) => servers.includes(c));
  if (servers.length === 2 && confined) return { line };
  const how = [
    servers.length === 2 ? undefined : `kmipd had ${servers.length} CPU${servers.length === 1 ? '' : 's'}`,
    confined ? undefined : generator.some((c) => servers.includes(c)) ? 'the load generator also had CPUs kmipd did not' : 'the load generator ran on CPUs of its own',
  ].filter((s) => s !== undefined);
  return { line, departs: `The targets are set for 2 cores that kmipd shares with the load generator. In this run ${how.join(' and ')}: a target met here is met in that setting, not the issue's.` };
}
