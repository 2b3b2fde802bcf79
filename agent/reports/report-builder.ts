/**
 * The report, as a pure function of what the stores hold: the rollups (per environment and hour;
 * per series totals) and the journal's events over the period. Nothing here reads a file, a clock
 * or the agent: the reader (report-reader.ts) gathers the input, and the same input always gives
 * the same report, which is what the tests' synthetic 30 days rely on.
 *
 * Where each figure comes from:
 * - daily performance: the rollups' hours, merged per environment and local date (histograms
 *   add, so a day's p95 is the p95 of its probes, not an average of hourly p95s);
 * - deployments: `promote.started` and how each promotion ended (`promote.succeeded`, or
 *   `promote.failed` with `switched`/`rolledBack`), per ISO week of its start;
 * - rollbacks: `traffic.switched` of kind `rollback`; time to switch is from the incident's
 *   `rule.firing` to the switch, time to detect from the first failed probe of the failure that
 *   fired the rule (`probe.down` on that environment, of the probes the rule reads) to the firing;
 * - incidents: `rule.firing` in the period and the `rule.resolved` of the same incident;
 * - top failing probes: the rollups' per-series totals; SLO budgets: as the agent has them.
 */
import { formatDuration } from '../../config/units.js';
import { LatencyHistogram } from './latency-sketch.js';
import { datesBetween, isoWeek, LocalClock } from './report-time.js';
import { HOUR_MS, type EnvHour, type SeriesTotal } from './rollup-store.js';

/** What the builder reads of an event: the journal's columns, `data` parsed. */
export interface ReportEvent {
  id: number;
  time: string;
  type: string;
  severity: string;
  env: string | null;
  probe: string | null;
  rule: string | null;
  data: Record<string, unknown>;
}

/** The event types a report reads (and the reader fetches). */
export const REPORT_EVENT_TYPES = [
  'probe.down',
  'probe.up',
  'rule.firing',
  'rule.resolved',
  'traffic.switched',
  'promote.started',
  'promote.step',
  'promote.succeeded',
  'promote.failed',
] as const;

export interface SloInput {
  name: string;
  objective: number;
  periodMs: number;
  budgetRemaining: number | null;
}

export interface ReportInput {
  now: number;
  sinceMs: number;
  timezone: string;
  environments: readonly string[];
  activeEnvironment: string | null;
  /** Per environment and hour, the hours of the period (from the hour the period starts in). */
  envHours: readonly EnvHour[];
  /** Probes and failures over the same hours of the probes that failed most (at least the `topProbes` first). */
  seriesTotals: readonly SeriesTotal[];
  /** Oldest first; may start before the period. Probe events are not needed here: they come as `failures`. */
  events: readonly ReportEvent[];
  /**
   * The probes' failures (probe.down → probe.up) in the order they began, from the same events
   * (FailureCollector): the reader digests them page by page, so that the builder's work does not
   * grow with every flap of every series.
   */
  failures: readonly FailureInterval[];
  slo: readonly SloInput[];
  coverage: { rollupsFrom: number | undefined; eventsFrom: number | undefined };
  /**
   * Failures of an environment's probes less than this apart belong to one stretch: the first of
   * the stretch is the "first failed probe" of an incident that fires during it (default 5 min,
   * the stock longest window: an error-ratio rule fires on a stretch of intermittent failures).
   */
  quietMs?: number;
  /** How many probes the top-failing list names (default 5). */
  topProbes?: number;
}

export interface DayFigures {
  /** Local date in the report's time zone. */
  date: string;
  probes: number;
  failures: number;
  errorRatio: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
}

export interface EnvironmentReport {
  probes: number;
  failures: number;
  errorRatio: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  meanMs: number | null;
  /** Each local date with probes, oldest first (a day the agent did not run is absent). */
  days: DayFigures[];
}

export type PromotionOutcome = 'succeeded' | 'failed' | 'rolledBack' | 'unfinished';

export interface PromotionEntry {
  id: string;
  from: string;
  to: string;
  kind: string;
  emergency: boolean;
  startedAt: string;
  endedAt: string | null;
  outcome: PromotionOutcome;
  /** The step that failed (failed or rolled back). */
  step: string | null;
  reason: string | null;
  week: string;
}

export interface WeekFigures {
  /** ISO week (`2026-W48`) and its Monday. */
  week: string;
  from: string;
  total: number;
  succeeded: number;
  failed: number;
  rolledBack: number;
  successRate: number | null;
}

export interface DeploymentsReport {
  /** Promotions that ended in the period: succeeded + failed + rolledBack. */
  total: number;
  succeeded: number;
  /** Failed at a gate (traffic never moved) or failed after the switch without a rollback. */
  failed: number;
  /** Switched, then rolled back (in the watch, or reverted after a failed verification). */
  rolledBack: number;
  /** Started but not ended: in progress now, or cut short by a restart. Not in `total`. */
  unfinished: number;
  /** succeeded / total; null without promotions. */
  successRate: number | null;
  weeks: WeekFigures[];
  promotions: PromotionEntry[];
}

export interface RollbackEntry {
  at: string;
  from: string;
  to: string;
  /** The rule whose incident rolled back; null for an operator's rollback or a promotion's revert. */
  rule: string | null;
  incident: string | null;
  trigger: 'rule' | 'manual' | 'promotion';
  /** First failed probe → rule.firing; null when no probe had failed (a latency rule) or not a rule's. */
  detectMs: number | null;
  /** rule.firing → traffic.switched; for an operator's rollback, the request → traffic.switched; null for a promotion's revert. */
  switchMs: number | null;
  /** The promotion it undid, when it came during one (its watch, or its revert). */
  promotion: string | null;
  reason: string;
}

export interface IncidentEntry {
  id: string;
  rule: string;
  env: string | null;
  severity: string;
  state: 'firing' | 'resolved';
  startedAt: string;
  resolvedAt: string | null;
  /** Time to resolve: firing → resolved; null while it fires. */
  durationMs: number | null;
  detectMs: number | null;
  rolledBack: boolean;
}

export interface ProbeFailures {
  probe: string;
  env: string;
  probes: number;
  failures: number;
  errorRatio: number;
}

export interface Report {
  generatedAt: string;
  period: { since: string; from: string; to: string; timezone: string };
  activeEnvironment: string | null;
  environments: Record<string, EnvironmentReport>;
  deployments: DeploymentsReport;
  rollbacks: RollbackEntry[];
  incidents: IncidentEntry[];
  topFailingProbes: ProbeFailures[];
  slo: SloInput[];
  summary: {
    probes: number;
    failures: number;
    errorRatio: number | null;
    rollbacks: { count: number; medianDetectMs: number | null; medianSwitchMs: number | null };
    incidents: { total: number; critical: number; warning: number; open: number; medianResolveMs: number | null };
  };
  /** Since when the rollups and the journal hold anything: a period reaching further back shows less. */
  coverage: { rollupsFrom: string | null; eventsFrom: string | null };
}

const DEFAULT_QUIET_MS = 300_000;
/** Facts that read no probe: they do not narrow which probes an incident is about. */
const PROBELESS_FACTS = new Set(['activeEnvironment', 'promotionWatch', 'burnRate', 'budgetRemaining']);

export function buildReport(input: ReportInput): Report {
  const clock = new LocalClock(input.timezone);
  const from = input.now - input.sinceMs;
  const inPeriod = (event: ReportEvent) => {
    const t = Date.parse(event.time);
    return t >= from && t <= input.now;
  };

  const environments = environmentFigures(input, clock);
  const failures = new FailureStretches(input.failures, input.quietMs ?? DEFAULT_QUIET_MS);
  const firings = new Map<string, ReportEvent>();
  const resolutions = new Map<string, ReportEvent>();
  const switchedFor = new Set<string>();
  const watchRollbacks = new Map<number, string>();
  for (const event of input.events) {
    const incident = typeof event.data.incident === 'string' ? event.data.incident : undefined;
    if (event.type === 'rule.firing' && incident) firings.set(incident, event);
    if (event.type === 'rule.resolved' && incident) resolutions.set(incident, event);
    if (event.type === 'traffic.switched' && incident && isRollback(event)) switchedFor.add(incident);
    if (event.type === 'promote.step' && event.data.step === 'watch' && event.data.ok === false) {
      const figures = event.data.figures as { event?: unknown } | undefined;
      if (typeof figures?.event === 'number') watchRollbacks.set(figures.event, String(event.data.promotion));
    }
  }

  const incidents: IncidentEntry[] = [];
  for (const event of input.events) {
    if (event.type !== 'rule.firing' || !inPeriod(event)) continue;
    const id = String(event.data.incident);
    const resolved = resolutions.get(id);
    const startedAt = Date.parse(event.time);
    const resolvedAt = resolved && Date.parse(resolved.time) >= startedAt ? Date.parse(resolved.time) : undefined;
    incidents.push({
      id,
      rule: event.rule ?? id.split('#')[0]!,
      env: event.env,
      severity: String(event.data.severity ?? event.severity),
      state: resolvedAt === undefined ? 'firing' : 'resolved',
      startedAt: event.time,
      resolvedAt: resolvedAt === undefined ? null : resolved!.time,
      durationMs: resolvedAt === undefined ? null : resolvedAt - startedAt,
      detectMs: failures.detectMs(event),
      rolledBack: switchedFor.has(id),
    });
  }

  const rollbacks: RollbackEntry[] = [];
  for (const event of input.events) {
    if (event.type !== 'traffic.switched' || !isRollback(event) || !inPeriod(event)) continue;
    const incident = typeof event.data.incident === 'string' ? event.data.incident : null;
    const trigger: RollbackEntry['trigger'] = incident?.startsWith('manual-') ? 'manual' : incident?.startsWith('promote:') ? 'promotion' : 'rule';
    const firing = trigger === 'rule' && incident ? firings.get(incident) : undefined;
    const at = Date.parse(event.time);
    rollbacks.push({
      at: event.time,
      from: String(event.data.from),
      to: String(event.data.to),
      rule: event.rule,
      incident,
      trigger,
      detectMs: firing ? failures.detectMs(firing) : null,
      switchMs: firing ? Math.max(0, at - Date.parse(firing.time)) : trigger === 'manual' ? sinceRequest(incident!, at) : null,
      promotion: watchRollbacks.get(event.id) ?? (trigger === 'promotion' ? (incident!.split(':')[1] ?? null) : null),
      reason: String(event.data.reason ?? ''),
    });
  }

  const deployments = deploymentFigures(input, clock, inPeriod);
  const topFailingProbes = input.seriesTotals
    .filter((total) => total.failures > 0)
    .map((total) => ({ probe: total.probe, env: total.env, probes: total.count, failures: total.failures, errorRatio: total.failures / total.count }))
    .sort((a, b) => b.failures - a.failures || a.probe.localeCompare(b.probe) || a.env.localeCompare(b.env))
    .slice(0, input.topProbes ?? 5);

  const probes = Object.values(environments).reduce((sum, env) => sum + env.probes, 0);
  const failed = Object.values(environments).reduce((sum, env) => sum + env.failures, 0);
  return {
    generatedAt: new Date(input.now).toISOString(),
    period: { since: formatDuration(input.sinceMs), from: new Date(from).toISOString(), to: new Date(input.now).toISOString(), timezone: input.timezone },
    activeEnvironment: input.activeEnvironment,
    environments,
    deployments,
    rollbacks,
    incidents,
    topFailingProbes,
    slo: input.slo.map(({ name, objective, periodMs, budgetRemaining }) => ({ name, objective, periodMs, budgetRemaining })),
    summary: {
      probes,
      failures: failed,
      errorRatio: probes === 0 ? null : failed / probes,
      rollbacks: {
        count: rollbacks.length,
        medianDetectMs: median(rollbacks.map((r) => r.detectMs)),
        // Fault to switch, greenlight's own: an operator's request → switch is another figure.
        medianSwitchMs: median(rollbacks.filter((r) => r.trigger !== 'manual').map((r) => r.switchMs)),
      },
      incidents: {
        total: incidents.length,
        critical: incidents.filter((i) => i.severity === 'critical').length,
        warning: incidents.filter((i) => i.severity === 'warning').length,
        open: incidents.filter((i) => i.state === 'firing').length,
        medianResolveMs: median(incidents.map((i) => i.durationMs)),
      },
    },
    coverage: {
      rollupsFrom: input.coverage.rollupsFrom === undefined ? null : new Date(input.coverage.rollupsFrom).toISOString(),
      eventsFrom: input.coverage.eventsFrom === undefined ? null : new Date(input.coverage.eventsFrom).toISOString(),
    },
  };
}

/** Per environment: the period's totals and each local date's figures, from merged hourly histograms. */
function environmentFigures(input: ReportInput, clock: LocalClock): Record<string, EnvironmentReport> {
  const fromHour = Math.floor((input.now - input.sinceMs) / HOUR_MS);
  interface Acc {
    probes: number;
    failures: number;
    latencyMs: number;
    histogram: LatencyHistogram;
  }
  const fresh = (): Acc => ({ probes: 0, failures: 0, latencyMs: 0, histogram: new LatencyHistogram() });
  const totals = new Map<string, Acc>();
  const days = new Map<string, Map<string, Acc>>();
  for (const env of input.environments) {
    totals.set(env, fresh());
    days.set(env, new Map());
  }
  for (const row of input.envHours) {
    if (row.hour < fromHour || row.hour * HOUR_MS > input.now || row.count === 0) continue;
    let total = totals.get(row.env);
    if (!total) {
      // An environment that is no longer configured still shows what it did.
      total = fresh();
      totals.set(row.env, total);
      days.set(row.env, new Map());
    }
    const date = clock.date(row.hour * HOUR_MS);
    const byDate = days.get(row.env)!;
    let day = byDate.get(date);
    if (!day) {
      day = fresh();
      byDate.set(date, day);
    }
    for (const acc of [total, day]) {
      acc.probes += row.count;
      acc.failures += row.failures;
      acc.latencyMs += row.latencyMs;
      acc.histogram.addEncoded(row.bins);
    }
  }
  const result: Record<string, EnvironmentReport> = {};
  for (const [env, total] of totals) {
    result[env] = {
      probes: total.probes,
      failures: total.failures,
      errorRatio: total.probes === 0 ? null : total.failures / total.probes,
      p50Ms: ms(total.histogram.quantile(0.5)),
      p95Ms: ms(total.histogram.quantile(0.95)),
      meanMs: total.probes === 0 ? null : ms(total.latencyMs / total.probes),
      days: [...days.get(env)!.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([date, day]) => ({
          date,
          probes: day.probes,
          failures: day.failures,
          errorRatio: day.failures / day.probes,
          p50Ms: ms(day.histogram.quantile(0.5))!,
          p95Ms: ms(day.histogram.quantile(0.95))!,
          p99Ms: ms(day.histogram.quantile(0.99))!,
          meanMs: ms(day.latencyMs / day.probes)!,
        })),
    };
  }
  return result;
}

/** Promotions started in the period, how each ended, and the weeks of the period. */
function deploymentFigures(input: ReportInput, clock: LocalClock, inPeriod: (event: ReportEvent) => boolean): DeploymentsReport {
  const ends = new Map<string, ReportEvent>();
  for (const event of input.events) {
    if ((event.type === 'promote.succeeded' || event.type === 'promote.failed') && typeof event.data.promotion === 'string')
      ends.set(event.data.promotion, event);
  }
  const promotions: PromotionEntry[] = [];
  for (const event of input.events) {
    if (event.type !== 'promote.started' || !inPeriod(event)) continue;
    const id = String(event.data.promotion);
    const end = ends.get(id);
    let outcome: PromotionOutcome = 'unfinished';
    if (end?.type === 'promote.succeeded') outcome = 'succeeded';
    else if (end?.type === 'promote.failed') outcome = end.data.rolledBack === true ? 'rolledBack' : 'failed';
    promotions.push({
      id,
      from: String(event.data.from),
      to: String(event.data.to),
      kind: String(event.data.kind ?? 'feature'),
      emergency: event.data.emergency === true,
      startedAt: event.time,
      endedAt: end?.time ?? null,
      outcome,
      step: end?.type === 'promote.failed' ? String(end.data.step) : null,
      reason: end?.type === 'promote.failed' ? String(end.data.reason ?? '') : null,
      week: isoWeek(clock.date(Date.parse(event.time))).week,
    });
  }
  const count = (list: PromotionEntry[], outcome: PromotionOutcome) => list.filter((p) => p.outcome === outcome).length;
  const figures = (list: PromotionEntry[]) => {
    const succeeded = count(list, 'succeeded');
    const failed = count(list, 'failed');
    const rolledBack = count(list, 'rolledBack');
    const total = succeeded + failed + rolledBack;
    return { total, succeeded, failed, rolledBack, successRate: total === 0 ? null : succeeded / total };
  };
  const weeks: WeekFigures[] = [];
  const seen = new Set<string>();
  for (const date of datesBetween(clock.date(input.now - input.sinceMs), clock.date(input.now))) {
    const { week, monday } = isoWeek(date);
    if (seen.has(week)) continue;
    seen.add(week);
    weeks.push({ week, from: monday, ...figures(promotions.filter((p) => p.week === week)) });
  }
  return { ...figures(promotions), unfinished: count(promotions, 'unfinished'), weeks, promotions };
}

/** A probe's failure on an environment: its probe.down to its probe.up (`to` Infinity while still down). */
export interface FailureInterval {
  env: string;
  probe: string;
  from: number;
  to: number;
}

/**
 * Turns probe.down and probe.up events, fed oldest first in any number of batches, into failure
 * intervals (`intervals`, in the order they began). A probe.down while the probe is already down
 * (a restart in between) continues its interval; a probe.up without one is ignored.
 */
export class FailureCollector {
  readonly intervals: FailureInterval[] = [];
  readonly #open = new Map<string, FailureInterval>();

  add(event: Pick<ReportEvent, 'type' | 'env' | 'probe' | 'time'>): void {
    if ((event.type !== 'probe.down' && event.type !== 'probe.up') || event.env === null || event.probe === null) return;
    const key = `${event.probe}@${event.env}`;
    if (event.type === 'probe.down') {
      if (this.#open.has(key)) return;
      const interval = { env: event.env, probe: event.probe, from: Date.parse(event.time), to: Number.POSITIVE_INFINITY };
      this.#open.set(key, interval);
      this.intervals.push(interval);
    } else {
      const interval = this.#open.get(key);
      if (interval) interval.to = Date.parse(event.time);
      this.#open.delete(key);
    }
  }
}

/** The failure intervals of these events (tests, and inputs made by hand). */
export function failureIntervals(events: readonly ReportEvent[]): FailureInterval[] {
  const collector = new FailureCollector();
  for (const event of events) collector.add(event);
  return collector.intervals;
}

/**
 * To find the first failed probe of the failure an incident fired on: walking the failures of the
 * rule's probes on its environment in the order they began, a gap longer than `quietMs` starts a
 * new stretch; the stretch still going at the firing (or ended less than `quietMs` before it) is
 * the one, and its first failure is the start.
 *
 * The stretches of one environment and set of probes are worked out once, for the first firing
 * that asks for them; each firing then finds its own by binary search (a report over a thousand
 * flapping series has hundreds of thousands of failures: walking them all for every firing held
 * the event loop, and the agent's probing, for a good part of a second).
 */
class FailureStretches {
  readonly #failures: readonly FailureInterval[];
  readonly #stretches = new Map<string, { start: number; end: number }[]>();
  readonly #quietMs: number;

  constructor(failures: readonly FailureInterval[], quietMs: number) {
    this.#failures = failures;
    this.#quietMs = quietMs;
  }

  /** First failed probe → this firing, or null when none of the rule's probes had been failing. */
  detectMs(firing: ReportEvent): number | null {
    if (firing.env === null) return null;
    const at = Date.parse(firing.time);
    const stretches = this.#stretchesOf(firing.env, ruleProbes(firing.data.figures));
    // The last stretch that began by the firing. Failures of it that began after the firing move
    // neither its start nor the answer to "still going, or ended less than quietMs before": one
    // of them began within quietMs of the end of what came before it, so its end is late enough.
    let low = 0;
    let high = stretches.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (stretches[middle]!.start <= at) low = middle + 1;
      else high = middle;
    }
    const stretch = stretches[low - 1];
    return stretch !== undefined && stretch.end + this.#quietMs >= at ? at - stretch.start : null;
  }

  #stretchesOf(env: string, probes: Set<string> | null): { start: number; end: number }[] {
    const key = `${env}\n${probes ? [...probes].sort().join('\n') : '*'}`;
    let stretches = this.#stretches.get(key);
    if (stretches) return stretches;
    stretches = [];
    let current: { start: number; end: number } | undefined;
    for (const failure of this.#failures) {
      if (failure.env !== env || (probes && !probes.has(failure.probe))) continue;
      if (current === undefined || failure.from > current.end + this.#quietMs) {
        current = { start: failure.from, end: failure.to };
        stretches.push(current);
      } else {
        current.end = Math.max(current.end, failure.to);
      }
    }
    this.#stretches.set(key, stretches);
    return stretches;
  }
}

/** The probes a rule's figures name, or null for every probe (a fact over `*` or with no probe param). */
function ruleProbes(figures: unknown): Set<string> | null {
  const facts = (figures as { facts?: { fact?: unknown; params?: Record<string, unknown> }[] } | undefined)?.facts;
  if (!Array.isArray(facts)) return null;
  const probes = new Set<string>();
  for (const fact of facts) {
    if (PROBELESS_FACTS.has(String(fact.fact))) continue;
    const named = fact.params?.probe;
    if (named === undefined || named === '*') return null;
    for (const probe of Array.isArray(named) ? named : [named]) {
      if (probe === '*') return null;
      probes.add(String(probe));
    }
  }
  return probes.size === 0 ? null : probes;
}

/** A switch that rolled back (a rule's, an operator's, a promotion's revert), not a promotion's forward switch. */
function isRollback(event: ReportEvent): boolean {
  if (event.data.kind !== undefined) return event.data.kind === 'rollback';
  const incident = String(event.data.incident ?? '');
  return !incident.startsWith('promote:') || incident.endsWith(':revert');
}

function ms(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Math.round(value * 10) / 10;
}

function median(values: readonly (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const middle = Math.floor(known.length / 2);
  return known.length % 2 === 1 ? known[middle]! : (known[middle - 1]! + known[middle]!) / 2;
}

/** An operator's rollback: its incident, `manual-<ISO time of the request>-<n>`, says when it was asked for. */
function sinceRequest(incident: string, at: number): number | null {
  const requested = Date.parse(incident.slice('manual-'.length, incident.lastIndexOf('-')));
  return Number.isFinite(requested) ? Math.max(0, at - requested) : null;
}
