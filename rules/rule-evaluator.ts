/**
 * Compiles the config's rules into json-rules-engine engines (one per rule, so only the rules
 * a new sample can change are run), keeps each rule's state machine, and returns the
 * transitions with the figures that decided them. The agent turns those into events and actions.
 */
import { Engine } from 'json-rules-engine';
import type { Config, ConditionConfig, RuleConfig } from '../config/schema.js';
import { formatDuration, parseDuration } from '../config/units.js';
import { FACTS, resolveEnv, type FactContext, type FactDefinition, type FactParams, type FactValue } from './facts.js';
import { CUSTOM_OPERATORS, STOCK_OPERATORS } from './operators.js';
import { RuleState, type RuleStateName, type Transition } from './rule-state.js';

/** One fact of a rule as evaluated: what it read, how it compared, and the outcome. */
export interface FactFigure {
  fact: string;
  params: Record<string, unknown>;
  operator: string;
  value: unknown;
  observed: unknown;
  result: boolean;
  /**
   * Not computed: a comparison between the environments (latencyRatio, errorRatioDiff,
   * latencyRegressionP) whose rule could not hold, another condition of its top-level `all`
   * being false (the stock watch rule while no promotion is watched). `observed` is undefined.
   */
  skipped?: true;
}

export interface Figures {
  facts: FactFigure[];
  samples: number;
  env: string;
}

export interface RuleDecision {
  rule: RuleConfig;
  transition: Transition;
  figures: Figures;
  message: string;
}

export interface RuleStatus {
  rule: string;
  severity: RuleConfig['severity'];
  state: RuleStateName;
  since: string | null;
  incident: number;
}

type Path = (string | number)[];
type Context = Omit<FactContext, 'ruleEnv'>;

/**
 * The comparisons between the environments (latencyRatio, errorRatioDiff, latencyRegressionP)
 * pair every probe with its counterpart, each pass, over windows minutes long: with thousands of
 * series that was most of the rules' CPU at a pass every 100 ms. A value is reused for this long
 * of the clock (a rule holding on one waits `for` seconds anyway).
 */
export const COMPARISON_REFRESH_MS = 1_000;

interface CompiledRule {
  config: RuleConfig;
  engine: Engine;
  state: RuleState;
  /** Probe names the rule reads, or '*' when it reads every probe. */
  probes: Set<string> | '*';
  /** Probe names its facts name (some may also read every probe). */
  named: Set<string>;
  /** Environment specs its facts read ('live', 'idle', names). */
  envs: Set<string>;
  /** Its conditions' leaves in the order of the tree, each with the engine's own operator: a check compares them all first (see #check). */
  leaves: Leaf[];
  /** Its latest engine run: the leaves' outcomes it was decided on, and what it decided. */
  last: { outcomes: string; holds: boolean } | undefined;
  /** Some of its leaves compare the environments (see #check). */
  compares: boolean;
}

/** A leaf `{fact, params, operator, value}` of a rule's conditions. */
interface Leaf {
  fact: string;
  params: FactParams;
  /** The params as the config gave them, for the figures. */
  given: Record<string, unknown>;
  paramsJson: string;
  operator: string;
  value: unknown;
  /** The engine's operator of that name: the comparison the engine itself makes. */
  compare: (observed: unknown, value: unknown) => boolean;
  /** A condition of the rule's top-level `all`: the rule cannot hold while it is false. */
  required: boolean;
  /** Its fact compares the environments: pairs every probe with its counterpart (see #check). */
  compares: boolean;
}

/**
 * What is wrong with comparing a fact whose values lie in `range` with `value` by `operator`: a
 * comparison that can never hold disables its rule without a word (errorRatio greaterThan 10,
 * written for 10 %), and one that always holds fires it at start.
 */
function outOfRange(fact: string, [min, max]: readonly [number, number], operator: string, value: unknown): string | undefined {
  const custom = CUSTOM_OPERATORS[operator];
  const holds = (observed: number) =>
    custom
      ? custom.evaluate(observed, value)
      : operator === 'greaterThan'
        ? observed > (value as number)
        : operator === 'greaterThanInclusive'
          ? observed >= (value as number)
          : operator === 'lessThan'
            ? observed < (value as number)
            : observed <= (value as number);
  // A comparison with a bound is monotonic over the range: it holds somewhere iff at an end,
  // everywhere iff at both. `outside [low, high]` is not: it fails wherever the pair meets the
  // range, so the pair's own ends (brought into the range) are tried too. The custom operators
  // take finite facts only: an open top is tried as the largest finite number.
  const top = Number.isFinite(max) ? max : Number.MAX_VALUE;
  const inside = (Array.isArray(value) ? value : []).filter((v): v is number => typeof v === 'number').map((v) => Math.min(top, Math.max(min, v)));
  const outcomes = [min, top, ...inside].map(holds);
  const span = Number.isFinite(max) ? `from ${min} to ${max}` : `${min} or more`;
  const shown = typeof value === 'string' ? value : JSON.stringify(value);
  const hint = !custom && max === 1 && (value as number) > 1 && (value as number) <= 100 ? ` (for ${value as number} %, write ${(value as number) / 100})` : '';
  if (!outcomes.some(Boolean)) return `${fact} is ${span}: ${operator} ${shown} can never hold, so the rule would never fire${hint}`;
  if (outcomes.every(Boolean)) return `${fact} is ${span}: ${operator} ${shown} always holds, so the rule would fire at once`;
  return undefined;
}

/**
 * What is wrong with comparing a fact of `kind` (a number unless said) by `operator` with `value`:
 * json-rules-engine compares strictly, so a value of another kind never equals the fact (probeUp
 * equal 0, promotionWatch equal "true", activeEnvironment equal gren) and never differs from it
 * in a way that means anything; no fact is a list, so contains and doesNotContain never hold; and
 * only numbers are greater, less, slower or longer.
 */
function kindMismatch(fact: string, kind: FactDefinition['kind'], operator: string, value: unknown, environments: readonly string[]): string | undefined {
  const what = kind === 'boolean' ? 'true or false' : kind === 'environment' ? `an environment name (${environments.join(', ')})` : 'a number';
  if (operator === 'contains' || operator === 'doesNotContain')
    return `${fact} is ${what}, not a list: ${operator} never holds on it; use equal, notEqual, in or notIn`;
  if (operator !== 'equal' && operator !== 'notEqual' && operator !== 'in' && operator !== 'notIn')
    return kind === undefined ? undefined : `${fact} is ${what}: ${operator} compares numbers and never holds on it; use equal or notEqual`;
  const fits = (v: unknown) =>
    kind === 'boolean' ? typeof v === 'boolean' : kind === 'environment' ? typeof v === 'string' && environments.includes(v) : typeof v === 'number';
  const odd = (Array.isArray(value) ? value : [value]).find((v) => !fits(v));
  return odd === undefined ? undefined : `${fact} is ${what}: ${operator} with ${JSON.stringify(odd)} compares it with what it never is`;
}

/**
 * Problems that make rules unusable, with config key paths: unknown facts or operators, params
 * that do not fit the fact, probes, windows or extracted values that do not exist, values of
 * the wrong type, and conditions json-rules-engine cannot compile.
 */
export function checkRules(config: Config): { path: Path; message: string }[] {
  const issues: { path: Path; message: string }[] = [];
  const probes = new Map(config.probes.map((probe) => [probe.name, probe]));
  const windows = config.windows.map(formatDuration);
  const envSpecs = ['live', 'idle', ...Object.keys(config.environments)];
  const operators = [...STOCK_OPERATORS, ...Object.keys(CUSTOM_OPERATORS)];

  config.rules.forEach((rule, index) => {
    walk(rule.when, ['rules', index, 'when'], (leaf, path) => {
      const fact = FACTS[leaf.fact];
      if (!fact) {
        issues.push({ path: [...path, 'fact'], message: `${JSON.stringify(leaf.fact)} is not a fact; use one of ${Object.keys(FACTS).join(', ')}` });
      } else {
        const parsed = fact.params.safeParse(leaf.params ?? {});
        if (!parsed.success) {
          for (const issue of parsed.error.issues) {
            issues.push({ path: [...path, 'params', ...(issue.path as Path)], message: `${issue.message} (for fact ${leaf.fact})` });
          }
        } else {
          const params = parsed.data;
          const names = params.probe === undefined || params.probe === '*' ? [] : Array.isArray(params.probe) ? params.probe : [params.probe];
          for (const name of names) {
            if (!probes.has(name))
              issues.push({
                path: [...path, 'params', 'probe'],
                message: `${JSON.stringify(name)} is not a probe; use one of ${[...probes.keys()].join(', ')} or *`,
              });
          }
          for (const problem of fact.check?.(params, config) ?? [])
            issues.push({ path: [...path, 'params', problem.param], message: `${problem.message} (for fact ${leaf.fact})` });
          if (params.window !== undefined && !fact.ownWindow && !windows.includes(params.window)) {
            issues.push({
              path: [...path, 'params', 'window'],
              message: `${JSON.stringify(params.window)} is not one of the configured windows (${windows.join(', ')})`,
            });
          }
          if (params.env !== undefined && !envSpecs.includes(params.env)) {
            issues.push({
              path: [...path, 'params', 'env'],
              message: `${JSON.stringify(params.env)} is not live, idle or an environment (${envSpecs.slice(2).join(', ')})`,
            });
          }
          if (
            params.name !== undefined &&
            typeof params.probe === 'string' &&
            probes.has(params.probe) &&
            !(params.name in probes.get(params.probe)!.extract)
          ) {
            const known = Object.keys(probes.get(params.probe)!.extract);
            issues.push({
              path: [...path, 'params', 'name'],
              message: `probe ${params.probe} extracts no ${JSON.stringify(params.name)}${known.length ? `; it extracts ${known.join(', ')}` : "; add it under the probe's extract"}`,
            });
          }
        }
      }
      if (!operators.includes(leaf.operator)) {
        issues.push({ path: [...path, 'operator'], message: `${JSON.stringify(leaf.operator)} is not an operator; use one of ${operators.join(', ')}` });
      } else if (leaf.operator in CUSTOM_OPERATORS) {
        const problem =
          CUSTOM_OPERATORS[leaf.operator]!.checkValue(leaf.value) ?? (fact?.range && outOfRange(leaf.fact, fact.range, leaf.operator, leaf.value));
        if (problem) issues.push({ path: [...path, 'value'], message: problem });
      } else if (/^(less|greater)Than/.test(leaf.operator) && typeof leaf.value !== 'number') {
        issues.push({ path: [...path, 'value'], message: `${JSON.stringify(leaf.value)} is not a number, which ${leaf.operator} compares with` });
      } else if (/^(less|greater)Than/.test(leaf.operator) && fact?.range) {
        const problem = outOfRange(leaf.fact, fact.range, leaf.operator, leaf.value);
        if (problem) issues.push({ path: [...path, 'value'], message: problem });
      } else if ((leaf.operator === 'in' || leaf.operator === 'notIn') && !Array.isArray(leaf.value)) {
        issues.push({ path: [...path, 'value'], message: `${leaf.operator} needs a list value` });
      }
      if (fact && operators.includes(leaf.operator)) {
        const problem = kindMismatch(leaf.fact, fact.kind, leaf.operator, leaf.value, Object.keys(config.environments));
        if (problem) issues.push({ path: [...path, 'value'], message: problem });
      }
    });
    try {
      new Engine([{ name: rule.name, conditions: rule.when as never, event: { type: rule.name } }], { allowUndefinedFacts: true });
    } catch (error) {
      issues.push({ path: ['rules', index, 'when'], message: `does not compile: ${(error as Error).message}` });
    }
  });
  return issues;
}

/** Per SLO, the window lengths (ms) rules read its burn rate over, so it keeps a count window for each. */
export function sloWindows(config: Config): Map<string, number[]> {
  const windows = new Map<string, number[]>();
  const only = Object.keys(config.slo).length === 1 ? Object.keys(config.slo)[0] : undefined;
  for (const rule of config.rules) {
    walk(rule.when, [], (leaf) => {
      if (leaf.fact !== 'burnRate') return;
      const { slo = only, window } = (leaf.params ?? {}) as FactParams;
      const ms = parseDuration(String(window));
      if (slo === undefined || ms === undefined) return;
      const list = windows.get(slo) ?? [];
      if (!list.includes(ms)) list.push(ms);
      windows.set(slo, list);
    });
  }
  return windows;
}

/** Lines (per probe and extracted value) that rules watch with aboveFor, so the series track them. */
export function watchedLines(config: Config): Map<string, Map<string, number[]>> {
  const lines = new Map<string, Map<string, number[]>>();
  for (const rule of config.rules) {
    walk(rule.when, [], (leaf) => {
      if (leaf.fact !== 'aboveFor') return;
      const { probe, name, line } = (leaf.params ?? {}) as FactParams;
      if (typeof probe !== 'string' || name === undefined || line === undefined) return;
      const byName = lines.get(probe) ?? new Map<string, number[]>();
      const list = byName.get(name) ?? [];
      if (!list.includes(line)) list.push(line);
      byName.set(name, list);
      lines.set(probe, byName);
    });
  }
  return lines;
}

/**
 * Evaluates rules as samples arrive. Samples mark their probe × environment dirty; one pass at a
 * time then runs every rule that reads a dirty series, once, however many samples arrived
 * meanwhile (so a burst costs one pass, not one per sample). Within a pass, rules that read
 * particular probes run before those that read every probe, and each rule's transitions are
 * handed to `onDecision` as soon as it has run: the rule a sample most likely changed decides
 * first. Facts are computed once per pass and shared by the rules that name them.
 *
 * With `deferEveryProbe` (the agent's), rules that read every probe of an environment do not run
 * on each sample: a sample marks its environment, and one pass over those rules runs when the
 * caller says (the agent: once per tick of AGGREGATE_PASS_MS), however many thousand samples
 * arrived meanwhile. They still run at once on a sample of a probe they name. Passes stay in one
 * queue, and a pass reads the facts as they are when it runs: never an older or partial view.
 */
/** A rule whose condition holds on an environment (RuleEvaluator.holdingOn). */
export interface RuleHolding {
  rule: string;
  /** What it found: `errorRatio 45.3% > 10%`. */
  found: string;
  /** It reads a window: it may remember failures that are over. */
  overWindow: boolean;
  /** It reads only whether the latest probes passed: a fresh round of them answers it again. */
  latestPass: boolean;
  /**
   * It does not hold on what greenlight has seen, but would on what it has not: a value above its
   * line since greenlight first read it (after a start) may have been above for longer (`found`
   * says what it has seen). Whether it holds is known once the run is as long as the rule asks.
   */
  unsure?: true;
}

export class RuleEvaluator {
  readonly #rules: CompiledRule[] = [];
  readonly #context: () => Context;
  readonly #onDecision: (decision: RuleDecision) => void;
  /** Passes run one at a time, so state transitions keep the order samples arrived in. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Series with samples not yet evaluated, and the pass that will take them. */
  readonly #dirty = new Map<string, { probe: string; env: string }>();
  #nextPass: Promise<void> | undefined;
  /** Without deferral, every rule a sample can change runs in its pass; with it, see the class comment. */
  readonly #deferEveryProbe: ((pass: () => Promise<void>) => void) | undefined;
  /** Rules by a probe they name (a rule that also reads every probe is listed under the probes it names). */
  #byProbe = new Map<string, CompiledRule[]>();
  /** Environments with samples the rules over every probe have not seen, and whether their pass is planned. */
  readonly #dirtyEnvs = new Set<string>();
  #everyProbePlanned = false;
  /** Set for the duration of one rule's check: the engine's facts read its context and memo. */
  #run: { context: FactContext; memo: Map<string, FactValue> } | undefined;

  /** Comparison facts' latest values, by live environment and fact key (see #fact). */
  readonly #comparisons = new Map<string, { at: number; value: FactValue }>();

  /** Rule checks so far: with `samples` it shows how many rules a sample actually runs. */
  runs = 0;
  /** Of those, the ones json-rules-engine ran (the others found every comparison as the last run left it). */
  engineRuns = 0;
  /** Probe results handed to onSample so far. */
  samples = 0;

  /**
   * `deferEveryProbe(pass)`: run `pass` later (it evaluates the rules over every probe for the
   * samples since the last one); called at most once until that pass has started.
   */
  constructor(
    rules: readonly RuleConfig[],
    context: () => Context,
    onDecision: (decision: RuleDecision) => void = () => undefined,
    options: { deferEveryProbe?: (pass: () => Promise<void>) => void } = {},
  ) {
    this.#context = context;
    this.#onDecision = onDecision;
    this.#deferEveryProbe = options.deferEveryProbe;
    this.#rules.push(...rules.map((config) => this.#compile(config)));
    this.#order();
  }

  /** Rules that read particular probes first (a sample most likely changes those); index them by probe. */
  #order(): void {
    this.#rules.sort((a, b) => Number(a.probes === '*') - Number(b.probes === '*'));
    this.#byProbe = new Map();
    for (const rule of this.#rules) {
      for (const probe of rule.named) {
        const list = this.#byProbe.get(probe);
        if (list) list.push(rule);
        else this.#byProbe.set(probe, [rule]);
      }
    }
  }

  get size(): number {
    return this.#rules.length;
  }

  /**
   * Swap in a reloaded rule set between passes. A rule whose config is unchanged keeps its state
   * (pending since, firing incident, cooldown); a changed rule keeps its cooldown (at its new
   * length); if it was pending, its `for` goes on counting from when it went pending, and the
   * next pass judges its new condition; if it was firing, it goes on firing under its new
   * condition without a new incident (its actions ran) and resolves as usual; rules gone
   * from the config are returned with their last state, for the caller to resolve.
   */
  replaceRules(rules: readonly RuleConfig[]): Promise<{ added: string[]; removed: { config: RuleConfig; state: RuleState }[]; changed: string[] }> {
    return this.#enqueue(async () => {
      const old = new Map(this.#rules.map((rule) => [rule.config.name, rule]));
      const added: string[] = [];
      const changed: string[] = [];
      const next = rules.map((config) => {
        const previous = old.get(config.name);
        old.delete(config.name);
        if (!previous) added.push(config.name);
        else if (JSON.stringify(previous.config) === JSON.stringify(config)) return previous;
        else changed.push(config.name);
        const compiled = this.#compile(config);
        if (previous?.state.state === 'firing')
          compiled.state.resumeFiring(previous.state.incident, previous.state.firingSince!, this.#context().now, previous.state.subjectEnv);
        else if (previous) {
          compiled.state.incident = previous.state.incident;
          if (previous.state.state === 'pending') compiled.state.resumePending(previous.state.pendingSince!, this.#context().now, previous.state.subjectEnv);
        }
        // The incident that acted is over whatever the reload changed (a description, a line): its
        // cooldown holds on, counted from when it started at the new rule's length.
        if (previous?.state.cooldownEnv !== undefined)
          compiled.state.startCooldown(previous.state.cooldownUntil - previous.config.cooldown, previous.state.cooldownEnv);
        return compiled;
      });
      this.#rules.splice(0, this.#rules.length, ...next);
      this.#order();
      this.#comparisons.clear();
      return { added, changed, removed: [...old.values()].map(({ config, state }) => ({ config, state })) };
    });
  }

  /**
   * A new result of `probe` on `env`: resolves once the pass that evaluates it is done. Undefined
   * when no pass runs for it now (with `deferEveryProbe`, no rule names the probe: the rules over
   * every probe see it at their tick).
   */
  onSample(probe: string, env: string): Promise<void> | undefined {
    this.samples++;
    const defer = this.#deferEveryProbe;
    if (defer) {
      this.#dirtyEnvs.add(env);
      if (!this.#everyProbePlanned && this.#rules.some((rule) => rule.probes === '*')) {
        this.#everyProbePlanned = true;
        defer(() => this.#enqueue(() => this.#everyProbePass()));
      }
      // No rule names this probe: nothing to run now.
      if (!this.#byProbe.has(probe)) return undefined;
    }
    this.#dirty.set(`${probe}\u0000${env}`, { probe, env });
    this.#nextPass ??= this.#enqueue(async () => {
      this.#nextPass = undefined;
      const dirty = [...this.#dirty.values()];
      this.#dirty.clear();
      const context = this.#context();
      await this.#evaluate(defer ? this.#naming(dirty, context) : this.#reading(dirty, context), context);
    });
    return this.#nextPass;
  }

  /**
   * With the rules over every probe deferred, a sample runs the rules that name its probe (those
   * over every probe too, when they also name it), found through the index: a pass per sample
   * must not look at every rule (200 rules, thousands of samples a second).
   */
  #naming(dirty: readonly { probe: string; env: string }[], context: Context): CompiledRule[] {
    const found = new Set<CompiledRule>();
    for (const d of dirty) for (const rule of this.#byProbe.get(d.probe) ?? []) if (readsEnv(rule, context, d.env)) found.add(rule);
    // In the rules' order, as a pass over all of them would take them.
    return found.size <= 1 ? [...found] : this.#rules.filter((rule) => found.has(rule));
  }

  /** Without deferral: every rule a sample can change (every probe's rules included). */
  #reading(dirty: readonly { probe: string; env: string }[], context: Context): CompiledRule[] {
    return this.#rules.filter((rule) => dirty.some((d) => (rule.probes === '*' || rule.probes.has(d.probe)) && readsEnv(rule, context, d.env)));
  }

  /** The deferred pass: the rules over every probe of an environment that had samples since the last. */
  async #everyProbePass(): Promise<void> {
    this.#everyProbePlanned = false;
    const envs = [...this.#dirtyEnvs];
    this.#dirtyEnvs.clear();
    const context = this.#context();
    const affected = this.#rules.filter((rule) => rule.probes === '*' && [...rule.envs].some((spec) => envs.includes(resolveEnv(context, spec))));
    await this.#evaluate(affected, context);
  }

  /** Evaluate every rule (after the live environment changed). */
  evaluateAll(): Promise<void> {
    return this.#enqueue(() => this.#evaluate(this.#rules, this.#context()));
  }

  /**
   * Let every rule fire again at once: after a traffic switch the live environment is a new
   * subject, and a cooldown left by an incident on the old one must not hold back its rollback.
   */
  clearCooldowns(): void {
    for (const rule of this.#rules) rule.state.clearCooldown();
  }

  /** Start `rule`'s cooldown on `env` now (its incident there acted and resolved). */
  startCooldown(ruleName: string, env: string): void {
    this.#rules.find((r) => r.config.name === ruleName)?.state.startCooldown(this.#context().now, env);
  }

  /** Whether `rule`'s condition holds when its facts read `env` instead (the rollback's judgement). No state changes. */
  holdsOn(ruleName: string, env: string): Promise<{ holds: boolean; figures: Figures } | undefined> {
    return this.#enqueue(async () => {
      const rule = this.#rules.find((r) => r.config.name === ruleName);
      if (!rule) return undefined;
      return this.#check(rule, { ...this.#context(), ruleEnv: env }, new Map());
    });
  }

  /**
   * The rules `which` picks whose condition holds on `env` now, on at least their `minSamples`
   * probes, each with what it found (`errorRatio 45.3% > 10%`) and whether it reads a window (it
   * may remember failures that are over): what would judge `env` if it were live. One pass, the
   * facts shared. Also those that may hold on what greenlight has not seen (`unsure`).
   */
  holdingOn(env: string, which: (rule: RuleConfig) => boolean): Promise<RuleHolding[]> {
    return this.#enqueue(async () => {
      const memo = new Map<string, FactValue>();
      const context = { ...this.#context(), ruleEnv: env };
      const holding: RuleHolding[] = [];
      for (const rule of this.#rules) {
        if (!which(rule.config)) continue;
        const { holds, figures, windowless } = await this.#check(rule, context, memo);
        const kind = {
          overWindow: rule.leaves.some((leaf) => FACTS[leaf.fact]?.overWindow === true),
          latestPass: rule.leaves.every((leaf) => FACTS[leaf.fact]?.latestPass === true),
        };
        if (holds && (windowless || figures.samples >= rule.config.minSamples))
          holding.push({ rule: rule.config.name, found: describeFacts(figures), ...kind });
        else if (rule.leaves.some((leaf) => FACTS[leaf.fact]?.unseen === true)) {
          // Had greenlight been reading all along, it would have had its samples too.
          const worst = await this.#check(rule, { ...context, worstCase: true }, new Map());
          if (worst.holds) holding.push({ rule: rule.config.name, found: describeFacts(figures), ...kind, unsure: true });
        }
      }
      return holding;
    });
  }

  /** Run every rule once with no data: a rule that throws here is broken. Throws naming the rule. */
  async selfTest(): Promise<void> {
    const empty: FactContext = { ruleEnv: 'live', activeEnvironment: 'blue', environments: ['blue', 'green'], now: this.#context().now, series: () => [] };
    for (const rule of this.#rules) {
      try {
        await this.#check(rule, empty, new Map());
      } catch (error) {
        throw new Error(`rule ${rule.config.name} fails on an empty snapshot: ${(error as Error).message}`, { cause: error });
      }
    }
  }

  /**
   * A rule that was firing (about `env`) before a restart goes on firing (no new incident, no
   * actions), held until `releaseResumeHolds`, then resolves as usual. False when the rule no
   * longer exists.
   */
  resumeFiring(ruleName: string, incident: number, firingSince: number, env?: string): boolean {
    const rule = this.#rules.find((r) => r.config.name === ruleName);
    if (!rule) return false;
    rule.state.resumeFiring(incident, firingSince, this.#context().now, env);
    return true;
  }

  /**
   * Make `ruleName`'s incidents numbered after `n` (numbers another agent of a cluster used): its
   * next incident is at least n + 1. A firing incident keeps its number.
   */
  numberAfter(ruleName: string, n: number): void {
    const rule = this.#rules.find((r) => r.config.name === ruleName);
    if (rule && rule.state.incident < n) rule.state.incident = n;
  }

  /** The series have refilled: resumed (and reloaded) firing rules may resolve from now on. */
  releaseResumeHolds(): void {
    for (const rule of this.#rules) rule.state.releaseResumeHold();
  }

  statuses(): RuleStatus[] {
    return this.#rules.map(({ config, state }) => {
      const since = state.state === 'firing' ? state.firingSince : state.state === 'pending' ? state.pendingSince : undefined;
      return {
        rule: config.name,
        severity: config.severity,
        state: state.state,
        since: since === undefined ? null : new Date(since).toISOString(),
        incident: state.incident,
      };
    });
  }

  #compile(config: RuleConfig): CompiledRule {
    const engine = new Engine([], { allowUndefinedFacts: true });
    for (const [name, operator] of Object.entries(CUSTOM_OPERATORS))
      engine.addOperator(name, (fact: unknown, value: unknown) => operator.evaluate(fact, value));
    for (const name of Object.keys(FACTS)) {
      engine.addFact(name, (params: Record<string, unknown>) => {
        // Computed by #check before the run: the pass's memo has it.
        return this.#fact(this.#factKey(name, params as FactParams), name, params as FactParams).value;
      });
    }
    engine.addRule({ name: config.name, conditions: config.when as never, event: { type: config.name } });
    const probes = new Set<string>();
    const envs = new Set<string>();
    const leaves: Leaf[] = [];
    let everyProbe = false;
    walk(config.when, [], (leaf, path) => {
      const params = (leaf.params ?? {}) as FactParams;
      leaves.push({
        fact: leaf.fact,
        params,
        given: leaf.params ?? {},
        paramsJson: JSON.stringify(params),
        operator: leaf.operator,
        value: leaf.value,
        compare: engineOperator(engine, leaf.operator),
        required: path.length <= 2 && (path.length === 0 || path[0] === 'all'),
        compares: FACTS[leaf.fact]?.compares === true,
      });
      envs.add(params.env ?? config.env);
      // A comparison reads the other environment too: a sample of either side can change it.
      if (FACTS[leaf.fact]?.compares) envs.add('live').add('idle');
      if (params.probe === undefined || params.probe === '*') everyProbe = true;
      else for (const name of Array.isArray(params.probe) ? params.probe : [params.probe]) probes.add(name);
    });
    return {
      config,
      engine,
      state: new RuleState({ forMs: config.for, keepFiringForMs: config.keepFiringFor, minSamples: config.minSamples, cooldownMs: config.cooldown }),
      probes: everyProbe ? '*' : probes,
      named: probes,
      envs,
      leaves,
      last: undefined,
      compares: leaves.some((leaf) => leaf.compares),
    };
  }

  /** A fact's key in a pass's memo: its name, the environment the rule reads, its params. */
  #factKey(name: string, params: FactParams, paramsJson = JSON.stringify(params)): string {
    return `${name}\u0000${this.#run!.context.ruleEnv}\u0000${paramsJson}`;
  }

  /**
   * A fact's value in the current pass, computed once per pass (rules share it). A comparison
   * between the environments is computed at most once per COMPARISON_REFRESH_MS of the clock.
   */
  #fact(key: string, name: string, params: FactParams): FactValue {
    const run = this.#run!;
    let computed = run.memo.get(key);
    if (computed) return computed;
    const fact = FACTS[name]!;
    if (fact.compares) {
      // Keyed by the live environment too: after a switch `live` is the other side, at once.
      const heldKey = `${run.context.activeEnvironment}\u0000${key}`;
      const held = this.#comparisons.get(heldKey);
      const now = run.context.now;
      if (held && now >= held.at && now - held.at < COMPARISON_REFRESH_MS) computed = held.value;
      else {
        computed = fact.compute(run.context, params);
        this.#comparisons.set(heldKey, { at: now, value: computed });
      }
    } else computed = fact.compute(run.context, params);
    run.memo.set(key, computed);
    return computed;
  }

  async #evaluate(rules: readonly CompiledRule[], context: Context): Promise<void> {
    const memo = new Map<string, FactValue>();
    for (const rule of rules) {
      const { holds, figures, windowless } = await this.#check(rule, { ...context, ruleEnv: rule.config.env }, memo);
      // A rule whose facts count no probes (promotionWatch, activeEnvironment) has no samples to wait for.
      for (const transition of rule.state.step(holds, windowless ? Number.POSITIVE_INFINITY : figures.samples, context.now, figures.env)) {
        this.#onDecision({ rule: rule.config, transition, figures, message: renderMessage(rule.config, figures, transition) });
      }
    }
  }

  async #check(rule: CompiledRule, context: FactContext, memo: Map<string, FactValue>): Promise<{ holds: boolean; figures: Figures; windowless: boolean }> {
    this.#run = { context, memo };
    this.runs++;
    try {
      // The engine's verdict is a function of its leaves' outcomes alone (each a fact's value put to
      // the engine's own operator, with a literal value), and json-rules-engine (an almanac, a
      // clone of the conditions, async events per run) is the costly part of a check: with
      // thousands of series a rule is checked ten times a second, and a latency that moves with
      // every sample mostly stays on its side of the line. So each leaf is compared here, and the
      // engine runs only when an outcome differs from its last run's; otherwise that verdict
      // stands. The figures always carry the values read now, and the samples are counted afresh.
      //
      // The comparisons between the environments pair every probe with its counterpart: at
      // 10,000 series the stock watch rule's two were most of the rules' CPU, all the time no
      // promotion was watched. So they come last, and are not computed (`skipped`) when another
      // condition of the rule's top-level `all` is false: the rule cannot hold then, whatever
      // they are, and its verdict is false without running the engine.
      const facts: FactFigure[] = new Array<FactFigure>(rule.leaves.length);
      let fewest = Number.POSITIVE_INFINITY;
      let cannotHold = false;
      const read = (leaf: Leaf, index: number): void => {
        const computed = this.#fact(this.#factKey(leaf.fact, leaf.params, leaf.paramsJson), leaf.fact, leaf.params);
        // A fact without a value holds no condition; its empty window must not hold back one that does (`any`).
        if (computed.samples !== undefined && computed.value !== undefined) fewest = Math.min(fewest, computed.samples);
        const result = leaf.compare(computed.value, leaf.value);
        if (!result && leaf.required && rule.compares) cannotHold = true;
        facts[index] = { fact: leaf.fact, params: leaf.given, operator: leaf.operator, value: leaf.value, observed: computed.value, result };
      };
      rule.leaves.forEach((leaf, index) => {
        if (!leaf.compares) read(leaf, index);
      });
      rule.leaves.forEach((leaf, index) => {
        if (!leaf.compares) return;
        if (cannotHold)
          facts[index] = { fact: leaf.fact, params: leaf.given, operator: leaf.operator, value: leaf.value, observed: undefined, result: false, skipped: true };
        else read(leaf, index);
      });
      const windowless = fewest === Number.POSITIVE_INFINITY && facts.every((figure) => FACTS[figure.fact]?.windowless === true);
      const samples = fewest === Number.POSITIVE_INFINITY ? 0 : fewest;
      const figures = { facts, samples, env: resolveEnv(context, context.ruleEnv) };
      if (cannotHold) return { holds: false, figures, windowless };
      const outcomes = facts.map((fact) => (fact.result ? '1' : '0')).join('');
      if (rule.last?.outcomes !== outcomes) {
        this.engineRuns++;
        const result = await rule.engine.run();
        rule.last = { outcomes, holds: result.results.length > 0 };
      }
      return { holds: rule.last.holds, figures, windowless };
    } finally {
      this.#run = undefined;
    }
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(task);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}

/**
 * The operator `name` as `engine` evaluates it (stock, custom or decorated). json-rules-engine
 * keeps them in `engine.operators`, which its typings leave out; a version without it fails here,
 * when the rules are compiled, and in the rule tests.
 */
function engineOperator(engine: Engine, name: string): Leaf['compare'] {
  const operators = (engine as unknown as { operators?: { get(name: string): { evaluate(a: unknown, b: unknown): boolean } | null } }).operators;
  if (typeof operators?.get !== 'function') throw new Error('json-rules-engine no longer exposes engine.operators: rule checks need its operators');
  const operator = operators.get(name);
  if (!operator) throw new Error(`${JSON.stringify(name)} is not an operator of json-rules-engine`);
  return (observed, value) => operator.evaluate(observed, value);
}

/** Whether one of the environments `rule` reads is `env` now. */
function readsEnv(rule: CompiledRule, context: Context, env: string): boolean {
  for (const spec of rule.envs) if (resolveEnv(context, spec) === env) return true;
  return false;
}

function walk(condition: ConditionConfig, path: Path, visit: (leaf: Extract<ConditionConfig, { fact: string }>, path: Path) => void): void {
  if ('all' in condition) condition.all.forEach((child, i) => walk(child, [...path, 'all', i], visit));
  else if ('any' in condition) condition.any.forEach((child, i) => walk(child, [...path, 'any', i], visit));
  else if ('not' in condition) walk(condition.not, [...path, 'not'], visit);
  else visit(condition, path);
}

/** A figure as a person reads it: ratios in %, latencies and durations in s, the rest as is. */
export function formatFigure(fact: string, value: unknown): string {
  if (typeof value !== 'number') return value === undefined ? 'no data' : String(value);
  if (fact === 'errorRatio' || fact === 'budgetRemaining') return `${(value * 100).toFixed(1)}%`;
  if (fact === 'errorRatioDiff') return `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} points`;
  if (fact === 'latencyRatio' || fact === 'burnRate') return `${Number(value.toFixed(2))}x`;
  if (fact === 'latencyRegressionP') return value !== 0 && value < 0.001 ? value.toExponential(1) : String(Number(value.toFixed(4)));
  if (fact === 'tlsDaysLeft') return `${value.toFixed(1)} days`;
  if (/Latency$/.test(fact) || fact === 'aboveFor') return `${Number(value.toFixed(3))}s`;
  return String(Number(value.toFixed(3)));
}

const OPERATOR_TEXT: Record<string, string> = {
  greaterThan: '>',
  greaterThanInclusive: '>=',
  lessThan: '<',
  lessThanInclusive: '<=',
  equal: '==',
  notEqual: '!=',
  longerThan: '>',
  shorterThan: '<',
  slowerThan: '>',
};

/** `errorRatio 42.0% > 10%`, one per fact that decided. */
function describeFacts(figures: Figures): string {
  const decisive = figures.facts.filter((figure) => figure.result);
  const shown = decisive.length > 0 ? decisive : figures.facts;
  return shown
    .map((figure) => {
      const target = typeof figure.value === 'number' ? formatFigure(figure.fact, figure.value) : JSON.stringify(figure.value);
      const probe = typeof figure.params.probe === 'string' && figure.params.probe !== '*' ? `[${figure.params.probe}]` : '';
      return `${figure.fact}${probe} ${formatFigure(figure.fact, figure.observed)} ${OPERATOR_TEXT[figure.operator] ?? figure.operator} ${target}`;
    })
    .join(', ');
}

/**
 * The rule's message: its template with {{rule}}, {{env}}, {{severity}}, {{figures}} and each
 * fact's observed value ({{errorRatio}}, {{meanLatency}}…) filled in; by default the rule's
 * description (or name) and the figures.
 */
export function renderMessage(rule: RuleConfig, figures: Figures, transition?: Transition): string {
  const values: Record<string, string> = { rule: rule.name, env: figures.env, severity: rule.severity, figures: describeFacts(figures) };
  for (const figure of figures.facts) values[figure.fact] ??= formatFigure(figure.fact, figure.observed);
  if (rule.message) return rule.message.replace(/\{\{\s*(\w+)\s*\}\}/g, (match, key: string) => values[key] ?? match);
  const state = transition?.to === 'resolved' || transition?.to === 'cleared' ? 'back to normal' : values.figures;
  return `${rule.description ?? rule.name} on ${figures.env}: ${state}`;
}
