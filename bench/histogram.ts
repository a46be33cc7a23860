// Latency histogram in microseconds: exact below 128 µs, then 64 sub-buckets per power of two
// (about 1.6 % resolution). Fixed size, so workers can ship and merge it cheaply.

const LINEAR = 128;
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64
const MAX_EXPONENT = 26; // values up to about 2^32 µs (71 minutes)
export const HISTOGRAM_BUCKETS = LINEAR + MAX_EXPONENT * SUB;

function bucketOf(us: number): number {
  const v = Math.max(0, Math.floor(us));
  if (v < LINEAR) return v;
  const msb = 31 - Math.clz32(v >>> 0 || 1);
  const shift = msb - SUB_BITS; // v >>> shift lies in [64, 128)
  const idx = LINEAR + (shift - 1) * SUB + ((v >>> shift) - SUB);
  return Math.min(idx, HISTOGRAM_BUCKETS - 1);
}

/** Midpoint of a bucket, in µs. */
function valueOf(idx: number): number {
  if (idx < LINEAR) return idx;
  const shift = Math.floor((idx - LINEAR) / SUB) + 1;
  const base = (idx - LINEAR - (shift - 1) * SUB + SUB) * 2 ** shift;
  return base + 2 ** shift / 2;
}

export interface HistogramData {
  /** Sparse [bucket, count] pairs. */
  readonly buckets: [number, number][];
  readonly count: number;
  readonly sumUs: number;
  readonly minUs: number;
  readonly maxUs: number;
}

export class Histogram {
  private readonly counts = new Float64Array(HISTOGRAM_BUCKETS);
  count = 0;
  private sum = 0;
  private min = Infinity;
  private max = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]! += 1;
    this.count += 1;
    this.sum += us;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
  }

  merge(d: HistogramData): void {
    for (const [b, c] of d.buckets) this.counts[b]! += c;
    this.count += d.count;
    this.sum += d.sumUs;
    if (d.count > 0) {
      this.min = Math.min(this.min, d.minUs);
      this.max = Math.max(this.max, d.maxUs);
    }
  }

  /** Latency at quantile q (0..1) in µs; the exact max for q = 1. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    if (q >= 1) return this.max;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(valueOf(i), this.min), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }

  toData(): HistogramData {
    const buckets: [number, number][] = [];
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) if (this.counts[i]) buckets.push([i, this.counts[i]!]);
    return { buckets, count: this.count, sumUs: this.sum, minUs: this.count ? this.min : 0, maxUs: this.max };
  }

  static from(d: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(d);
    return h;
  }
}

/** The figures every report shows for one latency distribution, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export function summarize(h: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    count: h.count,
    meanMs: ms(h.mean()),
    p50Ms: ms(h.quantile(0.5)),
    p99Ms: ms(h.quantile(0.99)),
    p999Ms: ms(h.quantile(0.999)),
    maxMs: ms(h.quantile(1)),
  };
}
