// HSM faults under a running kmipd, made for real on the SoftHSM token rather than simulated:
//   - token missing: the token directory is moved away while the server runs, then back;
//   - module cannot initialise: its configuration file and token directory are moved away, so
//     the server's reconnection attempts fail inside C_Initialize, then both come back;
//   - session lost / logged out: another PKCS#11 handle in the server's process closes all its
//     sessions or logs the token out (PKCS#11 sessions belong to one process, so this test runs
//     the server in-process; the client still talks to it over mutual TLS).
// Requests get a clear KMIP error while the HSM is away, never a crash, and the server reconnects
// by itself once it is back, without a restart. Stored keys come back byte for byte.
import { renameSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultReason, ResultStatus } from '../../src/kmip/registry/generated.js';
import { startServer, type RunningServer } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient, type ParsedResponse } from '../helpers/kmip-client.js';
import { openProbe } from '../hsm/helpers.js';
import { reportFigures } from './figures.js';
import { createItem, discoverItem, expectServedAndIntact, getItem, parseCreateGet, seedKeys, V12, type KeySet } from './helpers.js';
import { newTally } from './tally.js';

/** CKS_RW_USER_FUNCTIONS (PKCS#11; not exported by pkcs11js). */
const CKS_RW_USER_FUNCTIONS = 3;
const tally = newTally();
afterAll(() => reportFigures('faults-hsm', tally));

async function call(port: number, bundle: ClientBundle, items: Parameters<KmipTestClient['call']>[1]): Promise<ParsedResponse> {
  const k = await KmipTestClient.connect(port, bundle);
  try {
    return await k.call(V12, items);
  } finally {
    k.close();
  }
}

/**
 * While the HSM is away: Create and Get fail with General Failure naming the HSM; the server itself
 * answers. The server notices within a second: it re-derives its data key from the root key every
 * second (SoftHSM keeps serving session objects after their token directory has gone).
 */
async function expectClearHsmErrors(port: number, bundle: ClientBundle, someId: string): Promise<void> {
  const noticedBy = Date.now() + 3000;
  while ((await call(port, bundle, [createItem(V12)])).items[0]!.status === ResultStatus.Success) {
    if (Date.now() > noticedBy) throw new Error('Create still succeeds 3 s after the HSM went away');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const items of [[createItem(V12)], [getItem(someId)]]) {
    const r = await call(port, bundle, items);
    tally.malformedInputs += 1;
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.GeneralFailure });
    // Not Cryptographic Failure: the stored key is fine, the HSM is not there.
    expect(r.items[0]!.message).toMatch(/HSM/);
  }
  const d = await call(port, bundle, [discoverItem()]);
  expect(d.items[0]!.status).toBe(ResultStatus.Success);
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Retry Create until it works again (the server retries the HSM at most once a second). */
async function expectRecovery(port: number, bundle: ClientBundle, keys: KeySet): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const made = parseCreateGet(await call(port, bundle, [createItem(V12), getItem()]));
    if (made) {
      keys.set(made.id, made.material);
      return;
    }
    if (Date.now() > deadline) throw new Error('the server did not reconnect to the HSM');
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('HSM taken away from a running server (separate process)', () => {
  let dir: ReturnType<typeof tempDir>;
  let bundle: ClientBundle;
  let server: ServerProcess;
  let keys: KeySet;
  let tokenDir: string;

  beforeAll(async () => {
    dir = tempDir();
    bundle = await initAndEnroll(dir.path, 'good');
    server = await startServe(dir.path);
    keys = await seedKeys(server.port, bundle, 4);
    const tokens = join(dir.path, 'hsm/tokens');
    tokenDir = join(tokens, readdirSync(tokens)[0]!);
  });

  afterAll(async () => {
    const code = await server?.stop();
    dir?.remove();
    expect(code).toBe(0);
  });

  it('token missing: clear errors, then reconnects when the token is back', async () => {
    const pid = server.proc.pid;
    renameSync(tokenDir, join(dir.path, 'token-away'));
    try {
      await expectClearHsmErrors(server.port, bundle, [...keys.keys()][0]!);
      await new Promise((r) => setTimeout(r, 1200)); // a second attempt, still without the token
      await expectClearHsmErrors(server.port, bundle, [...keys.keys()][0]!);
    } finally {
      renameSync(join(dir.path, 'token-away'), tokenDir);
    }
    await expectRecovery(server.port, bundle, keys);
    expect(server.proc.pid).toBe(pid);
    expect(server.proc.exitCode).toBeNull();
    // The log line travels through a pipe and may arrive after the answer did.
    await until(() => server.logs.some((l) => l.includes('HSM reconnected')));
    await expectServedAndIntact(server.port, bundle, keys, tally);
  });

  it('module cannot initialise (configuration and token gone): clear errors, then reconnects', async () => {
    const conf = join(dir.path, 'hsm/softhsm2.conf');
    renameSync(tokenDir, join(dir.path, 'token-away'));
    renameSync(conf, join(dir.path, 'conf-away'));
    try {
      await expectClearHsmErrors(server.port, bundle, [...keys.keys()][0]!);
      await new Promise((r) => setTimeout(r, 1200));
      await expectClearHsmErrors(server.port, bundle, [...keys.keys()][0]!);
      // The reconnection attempts really reached the module and failed there.
      await until(() => server.logs.some((l) => l.includes('HSM still unavailable') && l.includes('MODULE_ERROR')));
    } finally {
      renameSync(join(dir.path, 'conf-away'), conf);
      renameSync(join(dir.path, 'token-away'), tokenDir);
    }
    await expectRecovery(server.port, bundle, keys);
    expect(server.proc.exitCode).toBeNull();
    await expectServedAndIntact(server.port, bundle, keys, tally);
  });
});

describe('HSM session lost under a running server (same process)', () => {
  let dir: ReturnType<typeof tempDir>;
  let bundle: ClientBundle;
  let running: RunningServer;
  let keys: KeySet;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = tempDir();
    bundle = await initAndEnroll(dir.path, 'good');
    const log = pino({ level: 'info' }, new Writable({ write: (c, _e, done) => (logs.push(String(c)), done()) }));
    running = await startServer(dir.path, { listen: '127.0.0.1:0', log });
    keys = await seedKeys(running.address.port, bundle, 4);
  });

  afterAll(async () => {
    await running?.stop();
    dir?.remove();
  });

  function probe() {
    const cfg = loadConfig(dir.path);
    return openProbe({ modulePath: cfg.hsm.module, tokenLabel: cfg.hsm.tokenLabel } as Parameters<typeof openProbe>[0]);
  }

  /** Whether this process is logged in to the token, seen from a fresh session of another handle. */
  function loggedIn(): boolean {
    const p = probe();
    try {
      return p.p11.C_GetSessionInfo(p.session).state === CKS_RW_USER_FUNCTIONS;
    } finally {
      p.close();
    }
  }

  it('all sessions closed by another handle: the next requests just work', async () => {
    const p = probe();
    p.p11.C_CloseAllSessions(p.slot);
    // Closing the last session of an application logs it out (PKCS#11 §5.6): the fault is real.
    expect(loggedIn()).toBe(false);
    tally.malformedInputs += 1;
    const made = parseCreateGet(await call(running.address.port, bundle, [createItem(V12), getItem()]));
    expect(made).toBeDefined();
    keys.set(made!.id, made!.material);
    expect(loggedIn()).toBe(true);
    await expectServedAndIntact(running.address.port, bundle, keys, tally);
  });

  it('token logged out behind our back: the next requests just work', async () => {
    const p = probe();
    p.p11.C_Logout(p.session);
    p.close();
    expect(loggedIn()).toBe(false);
    tally.malformedInputs += 1;
    const made = parseCreateGet(await call(running.address.port, bundle, [createItem(V12), getItem()]));
    expect(made).toBeDefined();
    keys.set(made!.id, made!.material);
    expect(loggedIn()).toBe(true);
    await expectServedAndIntact(running.address.port, bundle, keys, tally);
  });
});
