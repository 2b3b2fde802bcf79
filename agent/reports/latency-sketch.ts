/**
 * The latency histogram of a rollup: the sliding windows' log-scale bins (four per doubling from
 * 0.5 ms, LATENCY_BINS of them), so its quantiles read like the windows' and any number of
 * minutes, hours, probes or environments merge by adding bin by bin — a day's p95 is read from
 * the sum of its hours, never from an average of their p95s.
 *
 * Stored sparse: a probe series' minute touches a few bins of the 68, so a histogram is kept as
 * (bin, count) pairs, the bin in one byte and the count as an unsigned LEB128 varint — about 6
 * bytes a minute for a steady target, instead of 272 for the dense counters.
 */
import { binOf, LATENCY_BINS, quantileOfBins } from '../../probes/sliding-window.js';

/** Counts per bin, dense, with the number of samples they hold. Float64 so that sums of millions never wrap. */
export class LatencyHistogram {
  readonly bins = new Float64Array(LATENCY_BINS);
  count = 0;

  add(latencyMs: number): void {
    this.bins[binOf(latencyMs)]!++;
    this.count++;
  }

  /** Add a stored (encoded) histogram; a malformed one adds what it holds up to the fault. */
  addEncoded(blob: Uint8Array | null | undefined): void {
    if (blob) this.count += addEncodedBins(this.bins, blob);
  }

  /** The `q` quantile in ms (interpolated within its bin), undefined while empty. */
  quantile(q: number): number | undefined {
    return quantileOfBins(this.bins, this.count, q);
  }

  encode(): Buffer {
    return encodeBins(this.bins);
  }
}

/** The sparse form of dense bin counts. */
export function encodeBins(bins: ArrayLike<number>): Buffer {
  const bytes: number[] = [];
  for (let bin = 0; bin < LATENCY_BINS; bin++) {
    let count = bins[bin]!;
    if (count <= 0) continue;
    bytes.push(bin);
    // LEB128 with arithmetic rather than bit operators: counts may pass 2^32 in a long merge.
    while (count >= 0x80) {
      bytes.push((count % 0x80) | 0x80);
      count = Math.floor(count / 0x80);
    }
    bytes.push(count);
  }
  return Buffer.from(bytes);
}

/** Add the counts of a sparse histogram into dense `bins`; returns how many samples it held. */
export function addEncodedBins(bins: Float64Array | Uint32Array, blob: Uint8Array): number {
  let total = 0;
  let i = 0;
  while (i < blob.length) {
    const bin = blob[i++]!;
    let count = 0;
    let scale = 1;
    let byte: number;
    do {
      if (i >= blob.length) return total;
      byte = blob[i++]!;
      count += (byte & 0x7f) * scale;
      scale *= 0x80;
    } while (byte & 0x80);
    if (bin >= LATENCY_BINS) return total;
    bins[bin]! += count;
    total += count;
  }
  return total;
}

/**
 * Two sparse histograms as one (the rollup store's `bins_add`, run for every row a flush adds to
 * its hour): both list their bins in ascending order, so they merge pair by pair into one buffer,
 * with no dense array in between.
 */
export function mergeEncoded(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): Buffer {
  const left = a ?? EMPTY;
  const right = b ?? EMPTY;
  // Each bin of the result takes at most the bytes of both inputs' entries for it, plus one for a carry.
  const out = Buffer.allocUnsafe(left.length + right.length + LATENCY_BINS);
  let length = 0;
  const l = { at: 0, bin: -1, count: 0 };
  const r = { at: 0, bin: -1, count: 0 };
  next(left, l);
  next(right, r);
  while (l.bin >= 0 || r.bin >= 0) {
    let bin: number;
    let count: number;
    if (r.bin < 0 || (l.bin >= 0 && l.bin < r.bin)) {
      bin = l.bin;
      count = l.count;
      next(left, l);
    } else if (l.bin < 0 || r.bin < l.bin) {
      bin = r.bin;
      count = r.count;
      next(right, r);
    } else {
      bin = l.bin;
      count = l.count + r.count;
      next(left, l);
      next(right, r);
    }
    out[length++] = bin;
    while (count >= 0x80) {
      out[length++] = (count % 0x80) | 0x80;
      count = Math.floor(count / 0x80);
    }
    out[length++] = count;
  }
  return out.subarray(0, length);
}

const EMPTY = new Uint8Array(0);

/** Read the next (bin, count) entry of `blob` into `cursor`; bin -1 at the end or at a malformed entry. */
function next(blob: Uint8Array, cursor: { at: number; bin: number; count: number }): void {
  if (cursor.at >= blob.length || blob[cursor.at]! >= LATENCY_BINS) {
    cursor.bin = -1;
    return;
  }
  cursor.bin = blob[cursor.at++]!;
  let count = 0;
  let scale = 1;
  let byte: number;
  do {
    if (cursor.at >= blob.length) {
      cursor.bin = -1;
      return;
    }
    byte = blob[cursor.at++]!;
    count += (byte & 0x7f) * scale;
    scale *= 0x80;
  } while (byte & 0x80);
  cursor.count = count;
}
