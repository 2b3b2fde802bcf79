/** How a report's figures read in its Markdown and HTML forms: one place, so both say the same. */

/** `0.12 %`, `< 0.01 %`, `–` for none. */
export function percent(ratio: number | null | undefined, digits?: number): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '–';
  if (ratio === 0) return '0 %';
  const value = ratio * 100;
  if (digits !== undefined) return `${value.toFixed(digits)} %`;
  if (value < 0.01) return '< 0.01 %';
  return `${value.toFixed(value < 10 ? 2 : 1)} %`;
}

/** `4.2 ms`, `41 ms`, `1.23 s`, `–` for none. */
export function latency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1_000).toFixed(2)} s`;
}

/** `69,120`; `–` for what is not a number (a report read over HTTP may hold anything). */
export function count(n: number): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US') : '–';
}

/** The success rate as a whole percentage: `83 %`. */
export function rate(ratio: number | null): string {
  return ratio === null ? '–' : `${Math.round(ratio * 100)} %`;
}
