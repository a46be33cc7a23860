/**
 * Test helpers: temp SoftHSM dirs and an independent PKCS#11 "probe" that looks at the token
 * from outside the Hsm class (same process, same already-initialised module).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import type { HsmConfig } from '../../src/hsm/index.js';

export async function makeTempDir(prefix = 'kmipd-hsm-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Waits until `cond` holds, checking every `everyMs`; fails after `tries` checks, naming `what` (and `detail()`). */
export async function until(what: string, cond: () => boolean, o: { everyMs?: number; tries?: number; detail?: () => string } = {}): Promise<void> {
  const { everyMs = 5, tries = 2000 } = o;
  for (let i = 0; !cond(); i++) {
    if (i > tries) throw new Error(`timed out waiting for ${what}${o.detail ? `: ${o.detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

export interface Probe {
  readonly p11: pkcs11js.PKCS11;
  readonly slot: Buffer;
  readonly session: Buffer;
  findSecretKeys(template: pkcs11js.Template): Buffer[];
  close(): void;
}

/**
 * A second pkcs11js instance on the module an open Hsm has already initialised. It must not
 * C_Initialize/C_Finalize: the module state belongs to the Hsm. Its session shares the Hsm's login.
 */
export function openProbe(config: HsmConfig): Probe {
  const p11 = new pkcs11js.PKCS11();
  p11.load(config.modulePath);
  const slot = p11
    .C_GetSlotList(true)
    .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === config.tokenLabel);
  if (!slot) throw new Error('probe: token not found');
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  return {
    p11,
    slot,
    session,
    findSecretKeys(template) {
      p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, ...template]);
      try {
        return p11.C_FindObjects(session, 1000);
      } finally {
        p11.C_FindObjectsFinal(session);
      }
    },
    close() {
      try {
        p11.C_CloseSession(session);
      } catch {
        // already closed (e.g. by C_CloseAllSessions)
      }
    },
  };
}

/** All 8-byte windows of `needle` that occur in `haystack`. */
export function sharedWindows(haystack: Uint8Array, needle: Uint8Array, width = 8): number {
  const hay = Buffer.from(haystack);
  let hits = 0;
  for (let i = 0; i + width <= needle.length; i++) {
    if (hay.includes(Buffer.from(needle.subarray(i, i + width)))) hits++;
  }
  return hits;
}
