// An answer never reaches the client before its audit lines are in audit.log: the server shares
// one write of the audit log among the answers of a turn, and sends those answers only after it.
// Several connections in parallel (so that answers do share turns), each asking about its own key
// with two batch items, and checking audit.log the moment each answer arrives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { textString } from '../../src/ttlv/index.js';
import { Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { createKey, V12 } from '../operator/helpers.js';

const CONNECTIONS = 8;
const REQUESTS = 150;
let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'watcher');
  server = await startServe(dir.path);
});
afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

/** Reads audit.log as it grows and counts the lines about each object. */
class AuditReader {
  private readonly fd: number;
  private partial = '';
  readonly perObject = new Map<string, number>();

  constructor(path: string) {
    this.fd = openSync(path, 'r');
  }

  /** Reads everything appended since the last call, synchronously. */
  catchUp(): void {
    const buf = Buffer.alloc(1 << 16);
    for (let n; (n = readSync(this.fd, buf, 0, buf.length, null)) > 0; ) {
      const lines = (this.partial + buf.toString('utf8', 0, n)).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) {
        const object = (JSON.parse(line) as { object?: string }).object;
        if (object !== undefined) this.perObject.set(object, (this.perObject.get(object) ?? 0) + 1);
      }
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

describe('audit log and answers', () => {
  it('has every audit line of an answer in audit.log when the client reads the answer', async () => {
    const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => KmipTestClient.connect(server.port, client)));
    const ids = await Promise.all(conns.map((k) => createKey(k)));
    const audit = new AuditReader(join(dir.path, 'audit.log'));
    const ask = (id: string) => ({ operation: Operation.GetAttributes, payload: [textString(Tag.UniqueIdentifier, id)] });
    let missing = 0;
    try {
      await Promise.all(
        conns.map(async (k, c) => {
          const id = ids[c]!;
          for (let i = 1; i <= REQUESTS; i++) {
            const r = await k.call(V12, [ask(id), ask(id)]);
            audit.catchUp(); // at once: nothing else runs between the answer's arrival and this read
            expect(r.items.map((item) => item.status)).toEqual([ResultStatus.Success, ResultStatus.Success]);
            // The Create line, then two lines per answer so far: no fewer (a line after its answer),
            // and no more (only this connection asks about this key, one request at a time).
            if (audit.perObject.get(id) !== 1 + 2 * i) missing += 1;
          }
        }),
      );
    } finally {
      audit.close();
      conns.forEach((k) => k.close());
    }
    expect(missing).toBe(0);
    expect([...audit.perObject.values()].reduce((a, b) => a + b, 0)).toBe(CONNECTIONS * (1 + 2 * REQUESTS));
  });
});
