/**
 * Hot reload (SIGHUP, POST /api/v1/reload): close → load → start of what changed.
 *
 * - The new file is read and validated first (config schema, then every rule on an empty
 *   snapshot); an invalid one is refused with config.reload_failed naming every problem, and the
 *   running config stays.
 * - What changes is a pure diff (`planReload`): series whose fingerprint is unchanged keep their
 *   windows, counts and schedules; rules keep their state by name; actions, the traffic adapter
 *   and the receivers are rebuilt only when their block changed. Environment names are the
 *   agent's identity and change only with a restart; listen, dataDir, log, flags and journal apply
 *   after a restart and are said to.
 * - The whole reload holds the switch lock: a switch asked meanwhile waits for it, and a reload
 *   asked during a switch waits for the switch, so no switch runs on an adapter, a config or probe
 *   targets that are being replaced.
 */
import type { Logger } from 'pino';
import { ConfigError, formatConfigIssue } from '../../config/errors.js';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import { RuleEvaluator } from '../../rules/rule-evaluator.js';
import type { Action, Controller } from '../actions/action.js';
import type { ActionRunner } from '../actions/action-runner.js';
import type { AlertLifecycle } from '../alerts/alert-lifecycle.js';
import type { EventBus } from '../events/events.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { seriesSpecs, type SeriesSpec } from '../pipeline/series-registry.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { MANUAL_ROLLBACK, type PluginFactory } from '../plugins/plugin-factory.js';
import type { TrafficControl } from '../traffic/traffic-control.js';

/** What a reload did, or why it did nothing. */

/** How many of a refused config's problems the reload's event and log line name (all of them are in its data). */
const SHOWN_ISSUES = 5;
export type ReloadResult =
  | {
      ok: true;
      probes: ProbeChanges;
      rules: { added: string[]; removed: string[]; changed: string[] };
      components: string[];
      needsRestart: string[];
      notApplied: string[];
      /** What the new file turned off that the running one had on (a traffic adapter, a receiver: an unset variable). */
      notices: string[];
    }
  | { ok: false; error: string; issues: string[] };

export interface ProbeChanges {
  added: string[];
  removed: string[];
  changed: string[];
  kept: string[];
}

/** What a new config changes, as a diff of the running one. */
export interface ReloadPlan {
  /** Why the reload cannot be applied at all, when it cannot. */
  refusal: string | undefined;
  probes: ProbeChanges;
  /** Keys of the running series to stop and drop (removed or changed). */
  drop: string[];
  /** Series to build (added or changed). */
  build: SeriesSpec[];
  /** Plugin blocks and sections that changed and apply now. */
  components: ('traffic' | 'alerts' | 'actions' | 'api' | 'reports')[];
  environmentsChanged: boolean;
  /** Sections that differ from what the process runs with and apply only after a restart. */
  needsRestart: string[];
  /** What the new config says that no reload or restart applies, and what to do instead. */
  notApplied: string[];
}

/**
 * The diff of `next` against `previous` and the running series (key and fingerprint). Pure.
 * `started` is the config the process started with: what only a restart applies is judged against
 * it, not against the last reload (a listen address changed and changed back runs as it was).
 */
export function planReload(previous: Config, next: Config, running: readonly { key: string; fingerprint: string }[], started: Config = previous): ReloadPlan {
  const names = (config: Config) => Object.keys(config.environments);
  const refusal =
    JSON.stringify(names(next).sort()) !== JSON.stringify(names(previous).sort())
      ? `the environments changed (${names(previous).join(', ')} → ${names(next).join(', ')}): environment names are the agent's identity (live environment, flags, incidents) and change only with a restart`
      : undefined;
  const wanted = new Map(seriesSpecs(next).map((spec) => [spec.key, spec]));
  const probes: ProbeChanges = { added: [], removed: [], changed: [], kept: [] };
  const drop: string[] = [];
  for (const { key, fingerprint } of running) {
    const spec = wanted.get(key);
    if (spec?.fingerprint === fingerprint) {
      probes.kept.push(key);
      wanted.delete(key);
      continue;
    }
    (spec ? probes.changed : probes.removed).push(key);
    drop.push(key);
  }
  const rebuilt = new Set(probes.changed);
  for (const key of wanted.keys()) if (!rebuilt.has(key)) probes.added.push(key);
  const changed = (key: keyof Config) => JSON.stringify(previous[key]) !== JSON.stringify(next[key]);
  return {
    refusal,
    probes,
    drop,
    build: [...wanted.values()],
    components: [
      ...(['traffic', 'alerts', 'actions', 'api'] as const).filter((key) => changed(key)),
      ...(changed('rollups') || changed('reports') ? (['reports'] as const) : []),
    ],
    environmentsChanged: changed('environments'),
    needsRestart: (['listen', 'dataDir', 'log', 'flags', 'journal', 'cluster'] as const).filter(
      (key) => JSON.stringify(started[key]) !== JSON.stringify(next[key]),
    ),
    notApplied: changed('activeEnvironment')
      ? [
          `activeEnvironment (${next.activeEnvironment}) names the live environment of a first start only; traffic stays where it is: move it with greenlight promote or greenlight rollback`,
        ]
      : [],
  };
}

/** The running parts a reload replaces or reconfigures (the agent's). */
export interface ReloadTargets {
  readonly bus: EventBus;
  readonly redactor: Redactor;
  readonly metrics: AgentMetrics;
  readonly traffic: TrafficControl;
  readonly actions: ActionRunner;
  /** Report schedules and the rollups' retention (agent/reports), once the store is open. */
  readonly reports: { reload(next: Config): void } | undefined;
  /** Grouping, inhibition, escalation and windows are read from the adopted config; receivers rebuilt. */
  readonly alertLifecycle: Pick<AlertLifecycle, 'reconfigure'>;
  /** The data path: its series, SLO counts, rules and incidents change; a removed firing rule resolves through its `decide`. */
  readonly pipeline: Pick<Pipeline, 'series' | 'slo' | 'rules' | 'incidents' | 'decide' | 'holdResumed' | 'evaluateAll' | 'numberRules'>;
  readonly config: Config;
  /** Builds the plugin blocks that changed. */
  readonly plugins: PluginFactory;
  /** What actions are built with. */
  readonly controller: Controller;
  readonly dryRun: boolean;
  readonly now: () => number;
}

/** What a reload changes inside the agent. */
export interface ReloadHooks {
  /** The config in force from now on (the agent's accessors read it). */
  adopt(next: Config): void;
  /** The environments' TLS trust (CA files) for the probe pool. */
  trust(next: Config): void;
}

export class ConfigReloader {
  readonly #targets: ReloadTargets;
  readonly #hooks: ReloadHooks;
  readonly #read: (() => Promise<Config>) | undefined;
  readonly #source: string;
  readonly #logger: Logger;

  constructor(targets: ReloadTargets, hooks: ReloadHooks, options: { read: (() => Promise<Config>) | undefined; source: string; logger: Logger }) {
    this.#targets = targets;
    this.#hooks = hooks;
    this.#read = options.read;
    this.#source = options.source;
    this.#logger = options.logger;
    this.#started = targets.config;
  }

  /** The config the process started with (what only a restart applies is compared with it). */
  readonly #started: Config;

  reload(trigger: string): Promise<ReloadResult> {
    return this.#targets.traffic.exclusive(`reload (${trigger})`, () => this.#reload(trigger));
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    const t = this.#targets;
    const hooks = this.#hooks;
    const { series, slo, rules: evaluator, incidents } = t.pipeline;
    const source = this.#source;
    const refuse = (error: string, issues: string[] = []): ReloadResult => {
      t.bus.publish({
        type: 'config.reload_failed',
        severity: 'warning',
        // The problems themselves, not only their count: the log line is what the operator reads.
        message: `reload (${trigger}) refused, the running config stays: ${error}${issues.length > 0 ? `: ${issues.slice(0, SHOWN_ISSUES).join('; ')}${issues.length > SHOWN_ISSUES ? `; and ${issues.length - SHOWN_ISSUES} more` : ''}` : ''}`,
        data: { source, trigger, error, issues },
      });
      return { ok: false, error, issues };
    };
    if (!this.#read) return refuse('this agent was started without a config file to reload');
    let next: Config;
    try {
      next = await this.#read();
      // Before anything of the new config runs: its secrets are hidden from the first answer on.
      t.redactor.add(next.secrets);
      await new RuleEvaluator(next.rules, () => ({
        activeEnvironment: t.traffic.live,
        environments: Object.keys(next.environments),
        now: t.now(),
        series: () => [],
      })).selfTest();
    } catch (error) {
      const issues = error instanceof ConfigError ? error.issues.map((issue) => formatConfigIssue(issue)) : [];
      return refuse(
        issues.length > 0 ? `${source} is invalid (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'})` : (error as Error).message,
        issues,
      );
    }
    // Reading and checking a config of thousands of probes is a long turn of its own (a second
    // at 10,000 series). It is applied two check phases later, so a round of timers (the ticks
    // and deadlines that fell due) and a poll for I/O (the answers that came in) run between: the
    // two never add up to one turn. (A timer set here would not do: it counts from the loop's
    // clock as it was before the long turn, and would fire ahead of the ones overdue.)
    await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    const previous = t.config;
    const plan = planReload(previous, next, series.entries, this.#started);
    if (plan.refusal) return refuse(plan.refusal);

    // Probes: the changed and removed series go (their probes in flight end now), the new start.
    const drop = new Set(plan.drop);
    const dropped = series.entries.filter((entry) => drop.has(entry.key));
    await series.remove(dropped);
    hooks.adopt(next);
    if (plan.environmentsChanged) {
      // Validated a moment ago; should a CA file vanish since, the previous trust stays.
      try {
        hooks.trust(next);
      } catch (error) {
        this.#logger.error(
          { err: error },
          `the environments' CA files could not be read again after validation; probes keep the previous trust: ${(error as Error).message}`,
        );
      }
    }
    // A changed series starts afresh, but what its predecessor published (down since when) holds
    // until its first result: a series down before and after is not announced down twice.
    series.add(next, plan.build, new Map(dropped.map((entry) => [entry.key, entry])));
    slo.reconfigure(next);

    // Rules: state carried over by name; rules gone from the config end their incidents.
    const rules = await evaluator.replaceRules(next.rules);
    // A rule added back numbers on from where it left off.
    if (rules.added.length > 0) t.pipeline.numberRules();
    t.pipeline.holdResumed();
    // A changed rule's state is carried over with no transition to say so (a pending one stays
    // pending until its next pass judges its new condition): the gauge shows the state it has now.
    const states = new Map(evaluator.statuses().map((status) => [status.rule, status.state]));
    for (const name of [...rules.added, ...rules.changed]) t.metrics.setRuleState(name, states.get(name) ?? 'inactive');
    for (const { config, state } of rules.removed) {
      // A removed rule that was firing ends its incident the usual way: rule.resolved, resolved alerts.
      if (state.state === 'firing') {
        const env = incidents.get(config.name)?.env ?? t.traffic.live;
        const firedForMs = t.now() - (state.firingSince ?? t.now());
        t.pipeline.decide({
          rule: config,
          transition: { to: 'resolved', incident: state.incident, firedForMs },
          figures: { env, facts: [], samples: 0 },
          message: 'the rule was removed by a reload',
        });
      }
      t.metrics.removeRule(config.name);
    }
    incidents.rebind(next.rules);

    // Plugins: rebuilt when their block changed; unchanged actions keep their instance (and what it holds, such as a hold's alerts).
    if (plan.components.includes('traffic')) await t.traffic.replaceAdapter(t.plugins.traffic(next));
    if (plan.components.includes('reports')) t.reports?.reload(next);
    if (plan.components.includes('alerts')) t.alertLifecycle.reconfigure(t.plugins.receivers(next));
    if (plan.components.includes('actions')) {
      const keep = new Map<string, Action>();
      for (const [name, current] of t.actions.actions) {
        const block = next.actions[name];
        if (name === MANUAL_ROLLBACK || (block && JSON.stringify(previous.actions[name]) === JSON.stringify(block))) keep.set(name, current);
      }
      t.actions.replaceActions(t.plugins.actions(next, keep, { controller: t.controller, dryRun: t.dryRun }));
    }

    const { probes, components, needsRestart, notApplied } = plan;
    // What the new file turned off that the running one had on (a traffic adapter or a receiver
    // whose variable a typo left unset): said as loudly as at a start, where the same file warns.
    const earlier = new Set(previous.notices);
    const notices = next.notices.filter((notice) => !earlier.has(notice));
    const result: ReloadResult = {
      ok: true,
      probes,
      rules: { added: rules.added, removed: rules.removed.map((r) => r.config.name), changed: rules.changed },
      components,
      needsRestart,
      notApplied,
      notices,
    };
    for (const notice of [...notApplied, ...notices]) this.#logger.warn(notice);
    const summary = `${probes.added.length} probes added, ${probes.changed.length} changed, ${probes.removed.length} removed, ${probes.kept.length} kept with their windows; ${rules.added.length} rules added, ${rules.changed.length} changed, ${rules.removed.length} removed${components.length ? `; rebuilt ${components.join(', ')}` : ''}`;
    t.bus.publish({
      type: 'config.reloaded',
      severity: notices.length > 0 ? 'warning' : 'info',
      message: `config reloaded from ${source} (${trigger}): ${summary}${needsRestart.length ? `; ${needsRestart.join(', ')} changed but apply only after a restart` : ''}${notApplied.length ? `; ${notApplied.join('; ')}` : ''}${notices.length ? `; NOTE: ${notices.join('; ')}` : ''}`,
      data: { source, trigger, probes, rules: result.rules, components, needsRestart, notApplied, notices },
    });
    t.pipeline.evaluateAll();
    return result;
  }
}
