/**
 * Two-sample tests for "is this environment's latency worse than the other's?", on histograms:
 * counts over the same ordered bins (the sliding windows' log-scale latency bins). Samples that
 * share a bin are ties. Working on the bins needs no memory beyond what the windows already keep
 * and is exact for binned data; what it gives up is resolution inside a bin (about 19 %, four
 * bins per doubling), far below the shifts worth acting on.
 *
 * - A rank test (Mann–Whitney U, normal approximation with tie correction and continuity
 *   correction) catches a shifted distribution: most samples slower.
 * - A tail test catches what a rank test misses (Kayenta, spinnaker#6278: a canary whose slowest
 *   samples were 100x the baseline's passed): how many samples lie above the baseline's
 *   p99-ish sample, against how many chance allows.
 *
 * The combined p-value is the smaller of the two, doubled (Bonferroni over the two tests).
 */

/** The result of the rank test: U of `a`, its z score, and the one-sided p-value that `a` is not larger. */
export interface RankTest {
  u: number;
  z: number;
  p: number;
  n1: number;
  n2: number;
}

/** The result of the tail test. */
export interface TailTest {
  /** Samples of `a` above the bin holding the baseline's j-th largest sample. */
  exceed: number;
  /** j: the baseline sample that marks the tail (its j-th largest, about `tailFraction` of it). */
  j: number;
  /** How many of `a` would lie there by chance, on average: n1 · j / (n2 + 1). */
  expected: number;
  /** One-sided p-value: the chance of `exceed` or more if both samples come from one distribution. */
  p: number;
}

export interface RegressionTest {
  /** min(1, 2 · min(rank.p, tail.p)). */
  p: number;
  rank: RankTest;
  tail: TailTest;
}

function sum(values: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total;
}

/**
 * Mann–Whitney U of `a` against `b`, both counts over the same ordered bins. One-sided: small p
 * means the values of `a` tend to be larger than those of `b`. p is 1 when either is empty or
 * every sample shares one bin (no evidence either way).
 */
export function mannWhitney(a: ArrayLike<number>, b: ArrayLike<number>): RankTest {
  const n1 = sum(a);
  const n2 = sum(b);
  let u = 0;
  let below = 0;
  let ties = 0;
  for (let k = 0; k < a.length; k++) {
    const ak = a[k]!;
    const bk = b[k] ?? 0;
    u += ak * (below + bk / 2);
    below += bk;
    const t = ak + bk;
    ties += t * t * t - t;
  }
  const n = n1 + n2;
  const variance = n < 2 ? 0 : ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  if (n1 === 0 || n2 === 0 || !(variance > 0)) return { u, z: 0, p: 1, n1, n2 };
  // Continuity correction: U moves in steps of 1/2 (ties), the normal curve is continuous.
  const z = (u - (n1 * n2) / 2 - 0.5) / Math.sqrt(variance);
  return { u, z, p: normalUpperTail(z), n1, n2 };
}

/**
 * Tail test of `a` against `b` (counts over the same ordered bins): the number of `a` samples
 * above the bin that holds `b`'s j-th largest sample, j = max(1, ⌈tailFraction · n2⌉). If both
 * come from one continuous distribution, that number follows the negative hypergeometric law
 * P(X = x) = C(x+j−1, x) · C(n1−x+n2−j, n1−x) / C(n1+n2, n1) exactly, whatever the distribution;
 * counting only whole bins above the threshold undercounts, so with bins the p-value errs high
 * (a conservative test).
 */
export function tailExceedance(a: ArrayLike<number>, b: ArrayLike<number>, tailFraction = 0.01): TailTest {
  const n1 = sum(a);
  const n2 = sum(b);
  const j = Math.max(1, Math.ceil(tailFraction * n2));
  if (n1 === 0 || n2 === 0) return { exceed: 0, j, expected: 0, p: 1 };
  let seen = 0;
  let bin = b.length - 1;
  for (; bin >= 0; bin--) {
    seen += b[bin]!;
    if (seen >= j) break;
  }
  let exceed = 0;
  for (let k = bin + 1; k < a.length; k++) exceed += a[k]!;
  return { exceed, j, expected: (n1 * j) / (n2 + 1), p: exceedanceUpperTail(exceed, n1, n2, j) };
}

/** P(X ≥ x) for the exceedance count X of n1 samples over the j-th largest of n2 (negative hypergeometric). */
export function exceedanceUpperTail(x: number, n1: number, n2: number, j: number): number {
  if (x <= 0) return 1;
  if (x > n1) return 0;
  // P(X = x) from logs, then the ratio P(i+1)/P(i) = (i+j)/(i+1) · (n1−i)/(n1−i+n2−j) up to n1.
  let term = Math.exp(logChoose(x + j - 1, x) + logChoose(n1 - x + n2 - j, n1 - x) - logChoose(n1 + n2, n1));
  let total = 0;
  for (let i = x; i <= n1 && term > 0; i++) {
    total += term;
    const next = term * ((i + j) / (i + 1)) * ((n1 - i) / (n1 - i + n2 - j));
    // Past the mode the terms only shrink: stop once they no longer change the sum.
    if (next < term && next < total * 1e-17) break;
    term = next;
  }
  return Math.min(1, total);
}

/** Both tests of `a` (the environment judged) against `b` (the baseline), combined. */
export function latencyRegression(a: ArrayLike<number>, b: ArrayLike<number>, tailFraction = 0.01): RegressionTest {
  const rank = mannWhitney(a, b);
  const tail = tailExceedance(a, b, tailFraction);
  return { p: Math.min(1, 2 * Math.min(rank.p, tail.p)), rank, tail };
}

/** P(Z > z) for a standard normal Z. */
export function normalUpperTail(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** The complementary error function, with a relative error below 1.2e-7 everywhere (Numerical Recipes' erfcc). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
  9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7): about 15 significant digits. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** ln C(n, k). */
export function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}
