// --server-cpus / --generator-cpus: CPU lists, the read-back from /proc, and what the report says.
import { describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { allowedCpus, checkPlacement, cpuList, onCpus, parseCpuList, placementDescription } from '../../bench/cpu-placement.js';
import { benchRunBeforeAll, reportOf, runBench } from '../helpers/bench.js';
import { tempDir } from '../helpers/kmipd.js';

const run = promisify(execFile);

describe('CPU lists', () => {
  it('reads taskset lists into sorted CPU numbers and writes them back with ranges', () => {
    expect(parseCpuList('0')).toEqual([0]);
    expect(parseCpuList('3,0-1, 1')).toEqual([0, 1, 3]);
    expect(cpuList([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
    expect(cpuList(parseCpuList('2-3,0'))).toBe('0,2-3');
  });

  it('refuses what is not a list', () => {
    for (const bad of ['', 'a', '1-', '3-1', '0,,1', '-1']) expect(() => parseCpuList(bad), bad).toThrow(/not a CPU list/);
  });

  it('reads a process mask from /proc as taskset reports it', async () => {
    const { stdout } = await run('taskset', ['-c', '-p', String(process.pid)]);
    // taskset writes two CPUs in a row as "0,1", /proc as "0-1": compared as sets.
    expect(allowedCpus(process.pid)).toEqual(parseCpuList(/list:\s*(\S+)/.exec(stdout)![1]!));
    const fake = tempDir('kmipd-proc-');
    try {
      mkdirSync(join(fake.path, '42'));
      writeFileSync(join(fake.path, '42/status'), 'Name:\tnode\nCpus_allowed:\t5\nCpus_allowed_list:\t0,2\n');
      expect(allowedCpus(42, fake.path)).toEqual([0, 2]);
    } finally {
      fake.remove();
    }
  });

  it('starts a command on the CPUs asked for, with the pid of the command itself', async () => {
    const [command, args] = onCpus([0], process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
    const child = spawn(command, args, { stdio: 'ignore' });
    try {
      // taskset execs node: wait for that, then the mask is the one asked for.
      for (let i = 0; i < 100 && !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith(process.execPath); i++) await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')[0]).toBe(process.execPath);
      expect(allowedCpus(child.pid!)).toEqual([0]);
    } finally {
      child.kill('SIGKILL');
    }
    expect(onCpus(undefined, 'x', ['y'])).toEqual(['x', ['y']]);
  });

  it('refuses CPUs this process cannot use, naming the flag', () => {
    expect(() => checkPlacement({ servers: [0, 1], generator: [2, 3] }, [0, 1, 2, 3])).not.toThrow();
    expect(() => checkPlacement({ servers: [0, 4] }, [0, 1, 2, 3])).toThrow('--server-cpus 0,4: CPU 4 is not among this machine\'s usable CPUs (0-3)');
    expect(() => checkPlacement({ generator: [9] }, [0, 1])).toThrow(/--generator-cpus 9/);
  });
});

describe('what the report says about CPUs', () => {
  const departs = (p: Parameters<typeof placementDescription>[0], available: number[]) => placementDescription(p, available).departs;

  it('names the issue setting as such, and says how any other differs', () => {
    expect(placementDescription({}, [0, 1])).toEqual({ line: 'servers and load generator share CPUs 0-1 (not pinned)' });
    expect(departs({ servers: [0, 1], generator: [0, 1] }, [0, 1, 2, 3])).toBeUndefined();
    expect(departs({ servers: [0, 1], generator: [1] }, [0, 1, 2, 3])).toBeUndefined();
    expect(departs({}, [0, 1, 2, 3])).toMatch(/In this run kmipd had 4 CPUs: a target met here/);
    expect(departs({ servers: [0, 1], generator: [2, 3] }, [0, 1, 2, 3])).toMatch(/In this run the load generator ran on CPUs of its own:/);
    expect(departs({ servers: [0, 1] }, [0, 1, 2, 3])).toMatch(/the load generator also had CPUs kmipd did not/);
    expect(departs({ servers: [0], generator: [1] }, [0, 1])).toMatch(/kmipd had 1 CPU and the load generator ran on CPUs of its own/);
  });

  it('puts the line in the header and the difference under the targets, only where there are targets', () => {
    const target = { target: 'Get', measured: '1 ops/s', met: false };
    const cpus = { available: [0, 1, 2, 3], servers: [0, 1], generator: [2, 3] };
    const report = reportOf({ cpus, targets: [target] });
    expect(report).toContain('- CPUs: servers on CPUs 0-1, load generator on CPUs 2-3 (taskset; read back from /proc)');
    expect(report.indexOf('The targets are set for 2 cores')).toBeGreaterThan(report.indexOf('| Get | 1 ops/s |'));
    expect(reportOf({ cpus })).not.toContain('The targets are set for');
    expect(reportOf({ targets: [target] })).not.toContain('- CPUs:');
  });
});

describe('a bench run pinned with taskset', () => {
  const bench = benchRunBeforeAll(
    'kmipd-bench-cpus-',
    // CPU 0 exists everywhere; both on it is a placement any machine can run.
    ['--quick', '--suites', 'throughput', '--workloads', 'get', '--no-pykmip', '--repeat', '1', '--duration', '0.5', '--warmup', '0.1', '--server-cpus', '0', '--generator-cpus', '0'],
    120_000,
  );

  it('runs with zero errors and reports where it ran (the server and its own mask read back during the run)', () => {
    const get = bench.results.throughput!.kmipd.workloads['get']!;
    expect(get.ops).toBeGreaterThan(0);
    expect(get.errorCount, JSON.stringify(get.errors)).toBe(0);
    expect(bench.results.cpus).toMatchObject({ servers: [0], generator: [0] });
    const report = readFileSync(join(bench.outDir, 'report.md'), 'utf8');
    expect(report).toContain('- CPUs: servers on CPU 0, load generator on CPU 0 (taskset; read back from /proc)');
    if (allowedCpus(process.pid).length > 1) expect(report).toContain('In this run kmipd had 1 CPU:');
  });

  it('fails at once, before starting anything, for a CPU the machine does not have', async () => {
    await expect(runBench(['--server-cpus', '0,4095'], join(bench.outDir, 'refused'), 60_000)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('--server-cpus 0,4095: CPU 4095 is not among'),
    });
  });
});
