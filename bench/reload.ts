/**
 * What a hot reload costs the probing at N series (stock rules, 1 s): the agent reloads a config
 * that changes a quarter of the series (the health probes' path), none, and every one (the
 * windows), and the bench reads how long the reload held the event loop, against parsing and
 * validating the same config alone (measured in the same process a few seconds before: the part
 * no change can avoid), and what the probes recorded during it and the seconds after it, against as
 * many seconds before it: failures (a held-up loop must not turn into timeouts of healthy
 * targets) and skipped ticks.
 *
 * A reload runs in one turn of the loop: probes in flight wait for it. Before issue 18's ninth
 * round it dropped the changed series one at a time, re-indexing every series each time: at
 * 10,000 series a reload that changed every series held the loop 25 s.
 */
import { fmt, log, section, sleep, table, verdict, withStockAgent, type ReloadChange, type ReloadFigures, type SummaryRow } from './harness.js';

export interface ReloadBenchOptions {
  series: number;
  /** Seconds counted before and after each reload (default 5). */
  windowSeconds?: number;
  /** Seconds before the first (default 10). */
  warmupSeconds?: number;
}

const CHANGES: readonly { change: ReloadChange; label: string }[] = [
  { change: 'quarter', label: 'a quarter of the series changed' },
  { change: 'none', label: 'nothing changed' },
  { change: 'all', label: 'every series changed' },
];

/** Failed probes (every reason code; not skipped ticks, which a held-up loop may cost without a probe failing). */
function failed(tally: Record<string, number>): number {
  return Object.entries(tally).reduce((sum, [code, count]) => (code === 'ok' || code === 'skipped' ? sum : sum + count), 0);
}

function describe(tally: Record<string, number>): string {
  const failures = Object.entries(tally).filter(([code]) => code !== 'ok');
  return failures.length === 0 ? 'none' : failures.map(([code, count]) => `${count} ${code}`).join(', ');
}

export async function runReloadBench(options: ReloadBenchOptions): Promise<{ rows: SummaryRow[] }> {
  const { series } = options;
  const window = options.windowSeconds ?? 5;
  const warmup = options.warmupSeconds ?? 10;
  section(`reload: ${series} series at 1 s with the stock rules; the loop's longest turn during a reload, and the probes ${window} s before and after`);
  return withStockAgent(series, warmup, async (worker) => {
    const lines: string[][] = [];
    const rows: SummaryRow[] = [];
    for (const { change, label } of CHANGES) {
      // Parsing alone holds the loop as long as the reload's own parse: done first, and the probes given time to settle.
      const { parseMs } = await worker.call<{ parseMs: number }>({ cmd: 'parse-cost', change });
      await sleep(3_000);
      await worker.call({ cmd: 'tally' });
      await sleep(window * 1_000);
      const before = await worker.call<Record<string, number>>({ cmd: 'tally' });
      const figures = await worker.call<ReloadFigures>({ cmd: 'reload', change });
      if (!figures.ok) throw new Error(`the reload (${label}) was refused: ${figures.error}`);
      await sleep(window * 1_000);
      const after = await worker.call<Record<string, number>>({ cmd: 'tally' });
      const ratio = figures.longestTurnMs / parseMs;
      lines.push([
        label,
        String(figures.rebuilt),
        fmt(figures.reloadMs, 0),
        fmt(figures.longestTurnMs, 0),
        `${fmt(parseMs, 0)} (${fmt(ratio, 2)}x)`,
        `${before.ok ?? 0} ok; ${describe(before)}`,
        `${after.ok ?? 0} ok; ${describe(after)}`,
      ]);
      rows.push({
        bench: 'reload',
        figure: `${series} series, ${label}: longest turn / parsing the config alone`,
        target: 'report',
        measured: `${fmt(figures.longestTurnMs, 0)} / ${fmt(parseMs, 0)} ms (${fmt(ratio, 2)}x)`,
        verdict: 'info',
      });
      rows.push({
        bench: 'reload',
        figure: `${series} series, ${label}: probes failed during and ${window} s after (before)`,
        target: 'no more than before',
        measured: `${failed(after)} (${failed(before)}); skipped ticks ${after.skipped ?? 0} (${before.skipped ?? 0})`,
        verdict: verdict(failed(after) <= failed(before)),
      });
    }
    log(table(['reload', 'series rebuilt', 'reload ms', 'longest turn ms', 'parse alone ms', `${window} s before`, `the reload and ${window} s after`], lines));
    return { rows };
  });
}
