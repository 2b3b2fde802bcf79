/**
 * The SLOs' long count windows (probes/slo-window.ts) as the agent keeps them: fed by every
 * result (only the live environment's count), written to the store at most once a minute of the
 * agent's clock and at stop (a crash loses at most that much), restored at start, and carried
 * over a reload where an SLO and its windows did not change.
 */
import type { Config } from '../../config/schema.js';
import type { ProbeResult } from '../../probes/probe-result.js';
import { SloBook, sloDefinitions, sloStatus, type SloState, type SloStatus, type SloTracker } from '../../probes/slo-window.js';
import { sloWindows } from '../../rules/rule-evaluator.js';

/** How often the SLO counts are written to the store (and at stop): a crash loses at most this much. */
const SLO_SAVE_MS = 60_000;

export class SloKeeper {
  #book: SloBook;
  #savedAt = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;
  readonly #save: (state: Record<string, SloState>) => void;

  constructor(config: Config, options: { now: () => number; save: (state: Record<string, SloState>) => void }) {
    this.#now = options.now;
    this.#save = options.save;
    this.#book = bookFor(config);
  }

  /** One SLO's counts, for the facts. */
  get(name: string | undefined): SloTracker | undefined {
    return this.#book.get(name);
  }

  status(environments: readonly string[]): SloStatus[] {
    return sloStatus(this.#book, environments, this.#now());
  }

  /** What the store held at start. */
  restore(saved: unknown): void {
    this.#savedAt = this.#now();
    this.#book.restore(saved, this.#savedAt);
  }

  record(result: ProbeResult, live: boolean): void {
    this.#book.record(result, live);
    this.save(false);
  }

  /** The counts to the store, at most every SLO_SAVE_MS unless `force` (at stop). */
  save(force: boolean): void {
    const now = this.#now();
    if (this.#book.size === 0 || (!force && now - this.#savedAt < SLO_SAVE_MS)) return;
    this.#savedAt = now;
    this.#save(this.#book.save());
  }

  /** A reload: counts carried over where the SLO and window are unchanged. */
  reconfigure(config: Config): void {
    const book = bookFor(config);
    book.restore(this.#book.save(), this.#now());
    this.#book = book;
  }
}

/** The configured SLOs, each with its period and the windows the rules read. */
function bookFor(config: Config): SloBook {
  return new SloBook(sloDefinitions(config), Object.keys(config.environments), sloWindows(config));
}
