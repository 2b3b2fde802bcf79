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

/** Two sparse histograms as one (what the rollup store's SQL functions compute). */
export function mergeEncoded(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): Buffer {
  const bins = new Float64Array(LATENCY_BINS);
  if (a) addEncodedBins(bins, a);
  if (b) addEncodedBins(bins, b);
  return encodeBins(bins);
}
