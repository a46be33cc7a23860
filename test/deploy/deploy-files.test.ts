// The container and service files: linted, and holding what an operator relies on.
// (No Docker engine runs here, so the image itself is not built by the tests.)
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, mkdtempSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/kmipd.js';

const run = promisify(execFile);

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('passes dockerfile-utils lint', async () => {
    const { stdout, stderr } = await run(join(ROOT, 'node_modules/.bin/dockerfile-utils'), ['lint', join(ROOT, 'Dockerfile')]);
    expect(stdout + stderr).toBe('');
  });

  it('is multi-stage, runs as a non-root user, keeps data in a volume, exposes 5696, has a health check', () => {
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toMatch(/^USER kmipd$/m);
    expect(text).toMatch(/^VOLUME \["\/var\/lib\/kmipd"\]$/m);
    expect(text).toMatch(/^EXPOSE 5696$/m);
    expect(text).toMatch(/^HEALTHCHECK .*readyz/ms);
    expect(text).toContain('softhsm2');
    for (const f of ['deploy/docker-entrypoint.sh', 'bin', 'package.json']) expect(existsSync(join(ROOT, f))).toBe(true);
  });
});

describe('systemd unit', () => {
  const unit = join(ROOT, 'deploy/systemd/kmipd.service');
  const hasAnalyze = existsSync('/usr/bin/systemd-analyze');

  it.skipIf(!hasAnalyze)('verifies cleanly with systemd-analyze', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kmipd-unit-'));
    copyFileSync(unit, join(dir, 'kmipd.service'));
    const { stdout, stderr } = await run('/usr/bin/systemd-analyze', ['verify', join(dir, 'kmipd.service')]);
    expect(stdout + stderr).toBe('');
  });

  it('runs unprivileged with hardening and a clean stop on SIGTERM', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of ['User=kmipd', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/kmipd', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'KillSignal=SIGTERM', 'UMask=0077']) {
      expect(text).toContain(`\n${line}\n`);
    }
  });
});
