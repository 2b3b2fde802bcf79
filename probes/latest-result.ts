/**
 * A series' latest result, kept as its parts in fields and arrays the series owns, and built back
 * into a ProbeResult only when asked (the state API, a status page, a switch's staleness check).
 *
 * Why not keep the result object: a result held as its series' latest lives an interval, which is
 * long enough for the collector to copy it out of the young generation and then promote it, with
 * its checks array and extracted values, only for a major collection to free it a little later:
 * at 2,500 series that cost 5 % of the CPU per probe (issue 18). Copying its parts here allocates
 * nothing once a series has seen its longest result; what the fields point to was already alive
 * (the target's check outcomes, its names, the reason codes) or is rare (errors, TLS facts).
 *
 * Invariant: `result()` equals what was noted, field for field and in the same key order
 * (absent fields stay absent).
 */
import type { CheckResult, Confirmation, ProbeResult, ReasonCode } from './probe-result.js';
import type { ProbeTls } from './tls.js';

export class LatestResult {
  readonly #probe: string;
  readonly #env: string;
  #noted = false;
  #ok = false;
  #durationMs = 0;
  #startedAt = 0;
  #status: number | undefined;
  #reason: ReasonCode | undefined;
  #error: string | undefined;
  #tls: ProbeTls | undefined;
  #confirmation: Confirmation | undefined;
  // Sized exactly for the most a result has had: an array grown by assignment keeps room for 17.
  #checks: CheckResult[] = [];
  #checkCount = 0;
  #names: string[] = [];
  #values: number[] = [];
  #valueCount = 0;

  constructor(probe: string, env: string) {
    this.#probe = probe;
    this.#env = env;
  }

  /** Keep `result`'s parts in place of the ones kept before. */
  note(result: ProbeResult): void {
    this.#noted = true;
    this.#ok = result.ok;
    this.#durationMs = result.durationMs;
    this.#startedAt = result.startedAt;
    this.#status = result.status;
    this.#reason = result.reason;
    this.#error = result.error;
    this.#tls = result.tls;
    this.#confirmation = result.confirmation;
    const checks = result.checks;
    if (checks.length > this.#checks.length) this.#checks = checks.slice();
    else for (let i = 0; i < checks.length; i++) this.#checks[i] = checks[i]!;
    this.#checkCount = checks.length;
    let count = 0;
    for (const name in result.extracted) {
      if (count === this.#names.length) {
        this.#names = grown(this.#names, name);
        this.#values = grown(this.#values, 0);
      }
      this.#names[count] = name;
      this.#values[count++] = result.extracted[name]!;
    }
    this.#valueCount = count;
  }

  /** When the latest result's probe started (clock ms); undefined before the first. */
  get startedAt(): number | undefined {
    return this.#noted ? this.#startedAt : undefined;
  }

  /** Why the latest result failed; undefined when it passed, or before the first. */
  get reason(): ReasonCode | undefined {
    return this.#reason;
  }

  /** The latest result, built anew on each call; undefined before the first. */
  result(): ProbeResult | undefined {
    if (!this.#noted) return undefined;
    const extracted: Record<string, number> = {};
    for (let i = 0; i < this.#valueCount; i++) extracted[this.#names[i]!] = this.#values[i]!;
    const result: ProbeResult = {
      probe: this.#probe,
      env: this.#env,
      ok: this.#ok,
      durationMs: this.#durationMs,
      startedAt: this.#startedAt,
      checks: this.#checks.slice(0, this.#checkCount),
      extracted,
    };
    if (this.#status !== undefined) result.status = this.#status;
    if (this.#reason !== undefined) result.reason = this.#reason;
    if (this.#error !== undefined) result.error = this.#error;
    if (this.#tls !== undefined) result.tls = this.#tls;
    if (this.#confirmation !== undefined) result.confirmation = this.#confirmation;
    return result;
  }
}

/** `items` and `next` in an array of exactly their length. */
function grown<T>(items: readonly T[], next: T): T[] {
  const out = new Array<T>(items.length + 1);
  for (let i = 0; i < items.length; i++) out[i] = items[i]!;
  out[items.length] = next;
  return out;
}
