// The fuzz corpus in fixtures/fuzz-corpus/: inputs worth replaying on every run. Each line of a
// .jsonl file is one case: its bytes (hex), the behaviour it showed when found (`signature`), and
// why it is kept. A fuzz run started with KMIPD_FUZZ_RECORD=1 appends the first input of every
// behaviour not yet in the file, so the corpus grows to cover what the fuzzer reaches; inputs
// that once broke something are added by hand with a note.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/kmipd.js';

export interface CorpusCase {
  readonly name: string;
  readonly hex: string;
  readonly signature: string;
  readonly note?: string;
}

export const CORPUS_DIR = join(ROOT, 'fixtures/fuzz-corpus');
export const RECORDING = process.env.KMIPD_FUZZ_RECORD === '1';
/** Larger inputs are not recorded: the corpus stays small enough to read and to replay quickly. */
const MAX_CASE_BYTES = 4096;

export class Corpus {
  readonly cases: CorpusCase[];
  private readonly seen: Set<string>;

  constructor(readonly file: string) {
    const path = join(CORPUS_DIR, file);
    this.cases = existsSync(path)
      ? readFileSync(path, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as CorpusCase)
      : [];
    this.seen = new Set(this.cases.map((c) => c.signature));
  }

  /** In recording mode, keep `bytes` if its behaviour is new. Returns whether it was kept. */
  offer(signature: string, bytes: Uint8Array, note?: string): boolean {
    if (!RECORDING || this.seen.has(signature) || bytes.length > MAX_CASE_BYTES) return false;
    this.seen.add(signature);
    const c: CorpusCase = { name: `${this.file.replace(/\.jsonl$/, '')}-${this.cases.length + 1}`, hex: Buffer.from(bytes).toString('hex'), signature, ...(note ? { note } : {}) };
    this.cases.push(c);
    appendFileSync(join(CORPUS_DIR, this.file), JSON.stringify(c) + '\n');
    return true;
  }

  bytes(): Buffer[] {
    return this.cases.map((c) => Buffer.from(c.hex, 'hex'));
  }
}
