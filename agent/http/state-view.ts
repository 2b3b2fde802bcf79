/**
 * The read models the HTTP side serves: `GET /api/v1/state` (everything an operator or a script
 * asks about the agent) and the compact series of `GET /api/v1/overview` (the status page). Built
 * on request from the running parts; nothing here changes anything.
 */
import type { Config } from '../../config/schema.js';
import type { SeriesSnapshot, SeriesSummary } from '../../probes/probe-series.js';
import type { SloStatus } from '../../probes/slo-window.js';
import type { RuleStatus } from '../../rules/rule-evaluator.js';
import type { EnvironmentHealth } from '../actions/action.js';
import type { ActionRunner } from '../actions/action-runner.js';
import type { AlertLifecycle, LifecycleOverview } from '../alerts/alert-lifecycle.js';
import type { FlagStore } from '../flags/flag-store.js';
import { VERSION } from '../package.js';
import type { SeriesRegistry } from '../pipeline/series-registry.js';
import type { SloKeeper } from '../pipeline/slo-keeper.js';
import type { TrafficControl } from '../traffic/traffic-control.js';

export interface AgentState {
  version: string;
  startedAt: string;
  ready: boolean;
  dryRun: boolean;
  activeEnvironment: string;
  /** `lock`: what holds the switch lock (a switch or a reload), `waiting`: how many switches and reloads wait for it. */
  traffic: { adapter: string; switching: boolean; lock: string | null; waiting: number };
  environments: Record<string, { url: string; active: boolean; up: boolean | undefined; health: EnvironmentHealth; rolledBackFromAt: string | null }>;
  /** Actions open incidents are still owed (held or refused rollbacks), retried as soon as they would go ahead. */
  owed: { action: string; incident: string; since: string; attempts: number; reason: string; waiting: string | null }[];
  rules: RuleStatus[];
  flags: Record<string, Readonly<Record<string, boolean>>>;
  notices: readonly string[];
  slo: SloStatus[];
  series: SeriesSnapshot[];
}

/** What the state is read from (the agent's parts). */
export interface StateSources {
  readonly config: Config;
  readonly now: () => number;
  readonly startedAt: number;
  readonly ready: boolean;
  readonly dryRun: boolean;
  readonly traffic: Pick<TrafficControl, 'live' | 'adapter' | 'switching' | 'lock' | 'health' | 'rolledBackFromAt'>;
  readonly pipeline: {
    readonly series: Pick<SeriesRegistry, 'entries' | 'of'>;
    readonly rules: { statuses(): RuleStatus[] };
    readonly slo: Pick<SloKeeper, 'status'>;
  };
  readonly flags: Pick<FlagStore, 'all'>;
  readonly actions: Pick<ActionRunner, 'owed'>;
  readonly alertLifecycle: Pick<AlertLifecycle, 'overview'>;
}

export class StateView {
  readonly #sources: StateSources;

  constructor(sources: StateSources) {
    this.#sources = sources;
  }

  /** `withSeries: false` leaves out the per-series snapshots (the bulk at 1,000 series) for callers that summarize them. */
  state(withSeries = true): AgentState {
    const { config, traffic, flags, actions } = this.#sources;
    const { series, rules, slo } = this.#sources.pipeline;
    const now = this.#sources.now();
    const names = Object.keys(config.environments);
    const environments: AgentState['environments'] = {};
    for (const [name, env] of Object.entries(config.environments)) {
      const known = series.of(name).filter((s) => s.up !== undefined);
      const left = traffic.rolledBackFromAt(name);
      environments[name] = {
        url: redactUrl(env.url),
        active: name === traffic.live,
        up: known.length === 0 ? undefined : known.every((s) => s.up),
        health: traffic.health(name),
        rolledBackFromAt: left === undefined ? null : new Date(left).toISOString(),
      };
    }
    return {
      version: VERSION,
      startedAt: new Date(this.#sources.startedAt).toISOString(),
      ready: this.#sources.ready,
      dryRun: this.#sources.dryRun,
      activeEnvironment: traffic.live,
      traffic: { adapter: traffic.adapter.type, switching: traffic.switching, lock: traffic.lock.holder ?? null, waiting: traffic.lock.waiting },
      environments,
      rules: rules.statuses(),
      flags: flags.all(),
      notices: config.notices,
      slo: slo.status(names),
      series: withSeries ? series.entries.map((entry) => entry.series.snapshot(now)) : [],
      owed: actions.owed().map((owed) => ({ ...owed, since: new Date(owed.since).toISOString() })),
    };
  }

  /** Incidents, silences, maintenance windows and muted alerts (the status page's Alerts section). */
  alerts(): LifecycleOverview {
    return this.#sources.alertLifecycle.overview();
  }

  /** Every series in its compact form with its latest `samples` results (the status page's GET /api/v1/overview). */
  summaries(samples: number): SeriesSummary[] {
    const now = this.#sources.now();
    return this.#sources.pipeline.series.entries.map((entry) => entry.series.summary(now, samples));
  }
}

/** URLs may carry credentials (https://user:secret@host); never show them. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.username || url.password) {
      url.username = 'redacted';
      url.password = '';
    }
    url.search = url.search ? '?redacted' : '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '[unparseable url]';
  }
}
