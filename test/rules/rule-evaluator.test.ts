/**
 * How the evaluator paces rule passes when the agent defers the rules over every probe: those run
 * once per deferred pass whatever the number of samples, on the facts as they are when the pass
 * runs (never an older view), while rules that name a probe run on each of its samples.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import type { ProbeResult } from '../../probes/probe-result.js';
import { ProbeSeries } from '../../probes/probe-series.js';
import { SeriesPool } from '../../probes/series-pool.js';
import { RuleEvaluator } from '../../rules/rule-evaluator.js';
import { seededRandom } from '../../simulator/seeded-random.js';

const T0 = 1_800_000_000_000;

const CONFIG = `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: a, path: / }, { name: b, path: / } ]
rules:
  - name: every-slow
    severity: warning
    when: { all: [ { fact: meanLatency, params: { window: 1m }, operator: greaterThan, value: 1 } ] }
  - name: a-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: a }, operator: greaterThanInclusive, value: 1 } ] }
  - name: mixed
    severity: warning
    when: { all: [ { fact: consecutiveFailures, params: { probe: b }, operator: greaterThanInclusive, value: 1 }, { fact: errorRatio, operator: greaterThanInclusive, value: 0 } ] }
`;

function world() {
  const config = parseConfig(CONFIG, {});
  const series = ['a', 'b'].map((probe) => new ProbeSeries(probe, 'blue', config.windows, new Map(), T0));
  const pool = SeriesPool.of('blue', series)!;
  for (const s of series) s.pool = pool;
  let now = T0;
  const deferred: (() => Promise<void>)[] = [];
  const fired: string[] = [];
  const evaluator = new RuleEvaluator(
    config.rules,
    () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now, series: (env) => (env === 'blue' ? series : []), pool: () => pool }),
    (d) => {
      if (d.transition.to === 'firing') fired.push(d.rule.name);
    },
    { deferEveryProbe: (pass) => deferred.push(pass) },
  );
  const record = (probe: 'a' | 'b', ok: boolean, durationMs: number) => {
    now += 100;
    const s = series.find((x) => x.probe === probe)!;
    const result: ProbeResult = { probe, env: 'blue', ok, durationMs, startedAt: now, checks: [], extracted: {}, ...(ok ? {} : { reason: 'status' as const }) };
    s.record(result);
    return evaluator.onSample(probe, 'blue');
  };
  return { evaluator, deferred, fired, record };
}

describe('RuleEvaluator with the rules over every probe deferred', () => {
  it('runs them once per deferred pass, however many samples arrived, on the latest figures', async () => {
    const { evaluator, deferred, fired, record } = world();
    for (let i = 0; i < 50; i++) await record('a', true, 10);
    // Fifty samples of `a`: one pass planned for the rules over every probe; `a-failing` ran on each.
    expect(deferred).toHaveLength(1);
    const runsBefore = evaluator.runs;
    // A slow sample after the pass was planned: the pass must see it (never an older view).
    await record('a', true, 100_000);
    expect(deferred).toHaveLength(1);
    expect(fired).not.toContain('every-slow');
    await deferred.shift()!();
    expect(fired).toContain('every-slow');
    // The pass ran the rule over every probe once (and `mixed`, which reads every probe too).
    expect(evaluator.runs - runsBefore).toBe(1 + 2);
    // The next sample plans the next pass.
    await record('a', true, 10);
    expect(deferred).toHaveLength(1);
  });

  it('runs a rule that names the probe on each of its samples, at once', async () => {
    const { fired, record, deferred } = world();
    await record('a', false, 10);
    expect(fired).toEqual(['a-failing']);
    expect(deferred).toHaveLength(1);
  });

  it('runs a rule that names a probe and reads every probe at once on a sample of the probe it names', async () => {
    const { fired, record } = world();
    await record('b', false, 10);
    expect(fired).toContain('mixed');
  });

  it('without deferral, every rule a sample can change runs in its pass (the behaviour tests and tools rely on)', async () => {
    const config = parseConfig(CONFIG, {});
    const series = ['a', 'b'].map((probe) => new ProbeSeries(probe, 'blue', config.windows, new Map(), T0));
    const fired: string[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now: T0 + 1, series: (env) => (env === 'blue' ? series : []) }),
      (d) => {
        if (d.transition.to === 'firing') fired.push(d.rule.name);
      },
    );
    series[0]!.record({ probe: 'a', env: 'blue', ok: true, durationMs: 100_000, startedAt: T0, checks: [], extracted: {} });
    await evaluator.onSample('a', 'blue');
    expect(fired).toEqual(['every-slow']);
  });

  it('runs the engine again only when a comparison it makes changed; a verdict that stands still still moves the rule through for, with the samples and values of now', async () => {
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: a, path: / } ]
rules:
  - name: a-erroring
    severity: critical
    for: 500ms
    minSamples: 3
    when: { all: [ { fact: errorRatio, params: { probe: a, window: 1m }, operator: greaterThanInclusive, value: 0.5 } ] }
`,
      {},
    );
    const series = new ProbeSeries('a', 'blue', config.windows, new Map(), T0);
    let now = T0;
    const decisions: { to: string; samples: number; observed: unknown }[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now, series: (env) => (env === 'blue' ? [series] : []) }),
      (d) => decisions.push({ to: d.transition.to, samples: d.figures.samples, observed: d.figures.facts[0]?.observed }),
    );
    const record = async (ok: boolean) => {
      now += 100;
      series.record({ probe: 'a', env: 'blue', ok, durationMs: 5, startedAt: now, checks: [], extracted: {}, ...(ok ? {} : { reason: 'status' as const }) });
      await evaluator.onSample('a', 'blue');
    };
    // Ten failures: the error ratio is 1 throughout, so the engine runs once and its verdict stands.
    for (let i = 0; i < 10; i++) await record(false);
    expect(evaluator.runs).toBe(10);
    expect(evaluator.engineRuns).toBe(1);
    // Pending at the first failure, firing once `for` (500 ms) has passed on the clock, with the
    // samples counted afresh on each check (the same as when the engine runs every time).
    expect(decisions.map((d) => d.to)).toEqual(['pending', 'firing']);
    expect(decisions[0]!.samples).toBe(1);
    expect(decisions[1]!.samples).toBe(6);
    expect(decisions[1]!.observed).toBe(1);
    // Successes move the ratio down: 10/15 is still >= 0.5, so the verdict stands without the
    // engine, and the figures read now carry the value of now.
    for (let i = 0; i < 5; i++) await record(true);
    expect(evaluator.engineRuns).toBe(1);
    const now15 = await evaluator.holdsOn('a-erroring', 'blue');
    expect(now15!.holds).toBe(true);
    expect(now15!.figures.facts[0]).toMatchObject({ fact: 'errorRatio', operator: 'greaterThanInclusive', value: 0.5, result: true });
    expect(now15!.figures.facts[0]!.observed).toBeCloseTo(10 / 15, 10);
    expect(now15!.figures.samples).toBe(15);
    expect(evaluator.engineRuns).toBe(1);
    // 10/20 is still on the line; 10/21 crosses it: the engine runs again, once, and the rule resolves.
    for (let i = 0; i < 6; i++) await record(true);
    expect(evaluator.engineRuns).toBe(2);
    expect(decisions.at(-1)!.to).toBe('resolved');
    expect(decisions.at(-1)!.observed).toBeCloseTo(10 / 21, 10);
  });

  it('decides as a fresh engine run does, step by step, while it skips the engine on unchanged comparisons (comparison, equality, list and custom operators; all/any/not)', async () => {
    const leaf = (operator: string, value: unknown) => `{ fact: value, params: { probe: a, name: x }, operator: ${operator}, value: ${JSON.stringify(value)} }`;
    const env = (operator: string, value: unknown) => `{ fact: activeEnvironment, operator: ${operator}, value: ${JSON.stringify(value)} }`;
    const conditions = [
      `{ all: [ ${leaf('greaterThan', 50)} ] }`,
      `{ all: [ ${leaf('greaterThanInclusive', 50)} ] }`,
      `{ all: [ ${leaf('lessThan', 20)} ] }`,
      `{ all: [ ${leaf('lessThanInclusive', 20)} ] }`,
      `{ all: [ ${leaf('equal', 35)} ] }`,
      `{ all: [ ${leaf('notEqual', 35)} ] }`,
      `{ all: [ ${leaf('in', [10, 35, 70])} ] }`,
      `{ all: [ ${leaf('notIn', [10, 35, 70])} ] }`,
      `{ all: [ ${leaf('greaterThan', 30)}, ${env('equal', 'blue')} ] }`,
      `{ any: [ ${leaf('lessThan', 15)}, ${env('in', ['green'])} ] }`,
      `{ not: { any: [ ${leaf('greaterThan', 60)}, ${env('notEqual', 'blue')} ] } }`,
      `{ all: [ { any: [ ${leaf('equal', 70)}, ${leaf('equal', 10)} ] }, { not: ${env('equal', 'green')} } ] }`,
      `{ all: [ { fact: value, params: { probe: a, name: x }, operator: longerThan, value: 40s } ] }`,
    ];
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: a, path: /, extract: { x: $.x } } ]
rules:
${conditions.map((when, i) => `  - { name: r${i}, severity: warning, when: ${when} }`).join('\n')}
`,
      {},
    );
    const series = new ProbeSeries('a', 'blue', config.windows, new Map(), T0);
    let now = T0;
    let live = 'blue';
    const context = () => ({ activeEnvironment: live, environments: ['blue', 'green'], now, series: (e: string) => (e === 'blue' ? [series] : []) });
    const cached = new RuleEvaluator(config.rules, context);
    const random = seededRandom(18);
    // Values that sit on, beside and between the lines; sometimes none (the fact is undefined).
    const values = [undefined, 5, 10, 15, 19.5, 20, 20.5, 30, 35, 40, 41, 50, 50.5, 60, 70, 90];
    for (let step = 0; step < 300; step++) {
      now += 100;
      if (random() < 0.1) live = live === 'blue' ? 'green' : 'blue';
      const x = values[Math.floor(random() * values.length)];
      series.record({ probe: 'a', env: 'blue', ok: true, durationMs: 5, startedAt: now, checks: [], extracted: x === undefined ? {} : { x } });
      if (x === undefined) series.extracted.clear();
      const fresh = new RuleEvaluator(config.rules, context);
      for (let r = 0; r < conditions.length; r++) {
        const mine = await cached.holdsOn(`r${r}`, 'blue');
        const theirs = await fresh.holdsOn(`r${r}`, 'blue');
        expect({ step, rule: r, x, live, holds: mine!.holds }).toEqual({ step, rule: r, x, live, holds: theirs!.holds });
        expect(mine!.figures.facts).toEqual(theirs!.figures.facts);
      }
    }
    // The point of it: most checks found every comparison as the last run left it.
    expect(cached.runs).toBe(300 * conditions.length);
    expect(cached.engineRuns).toBeLessThan(cached.runs / 2);
  });

  it('computes a comparison between the environments at most once a second of the clock, and at once for a new live environment', async () => {
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: a, path: / } ]
rules:
  - name: worse-than-idle
    severity: critical
    when: { all: [ { fact: errorRatioDiff, params: { minSamples: 5 }, operator: greaterThan, value: 0.4 } ] }
`,
      {},
    );
    const series = { blue: new ProbeSeries('a', 'blue', config.windows, new Map(), T0), green: new ProbeSeries('a', 'green', config.windows, new Map(), T0) };
    let now = T0;
    let live = 'blue';
    const decisions: { to: string; observed: unknown }[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: live, environments: ['blue', 'green'], now, series: (env) => [series[env as 'blue' | 'green']] }),
      (d) => {
        if (d.transition.to !== 'pending') decisions.push({ to: d.transition.to, observed: d.figures.facts[0]?.observed });
      },
    );
    const record = (env: 'blue' | 'green', ok: boolean, n: number) => {
      for (let i = 0; i < n; i++)
        series[env].record({ probe: 'a', env, ok, durationMs: 5, startedAt: now, checks: [], extracted: {}, ...(ok ? {} : { reason: 'status' as const }) });
    };
    record('blue', false, 10);
    record('green', true, 10);
    await evaluator.evaluateAll();
    expect(decisions).toEqual([{ to: 'firing', observed: 1 }]);
    // Blue recovers within the same second: the comparison holds its value until a second has passed.
    record('blue', true, 30);
    now += 999;
    await evaluator.evaluateAll();
    expect(decisions).toHaveLength(1);
    now += 1;
    await evaluator.evaluateAll();
    expect(decisions.at(-1)).toEqual({ to: 'resolved', observed: 0.25 });
    // Blue fails again and fires; traffic then moves to green within the same millisecond: the rule
    // reads green against blue at once (never blue's figures held under the name `live`).
    record('blue', false, 200);
    now += 1_000;
    await evaluator.evaluateAll();
    expect(decisions.at(-1)!.to).toBe('firing');
    live = 'green';
    await evaluator.evaluateAll();
    expect(decisions.at(-1)!.to).toBe('resolved');
    expect(decisions.at(-1)!.observed as number).toBeLessThan(0);
  });

  it('does not compare the environments while another condition of the top-level all is false, and says so in the figures', async () => {
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: a, path: / } ]
rules:
  - name: watched-worse
    severity: critical
    when: { all: [ { fact: promotionWatch, operator: equal, value: true }, { fact: errorRatioDiff, params: { minSamples: 5 }, operator: greaterThan, value: 0.4 } ] }
  - name: either
    severity: warning
    when: { any: [ { fact: promotionWatch, operator: equal, value: true }, { fact: errorRatioDiff, params: { minSamples: 5 }, operator: greaterThan, value: 0.4 } ] }
`,
      {},
    );
    const series = { blue: new ProbeSeries('a', 'blue', config.windows, new Map(), T0), green: new ProbeSeries('a', 'green', config.windows, new Map(), T0) };
    let now = T0;
    let watching: string | undefined;
    let baselineReads = 0;
    const fired: string[] = [];
    const evaluator = new RuleEvaluator(
      config.rules.filter((rule) => rule.name === 'watched-worse'),
      () => ({
        activeEnvironment: 'blue',
        environments: ['blue', 'green'],
        now,
        watching,
        series: (env) => {
          if (env === 'green') baselineReads++;
          return [series[env as 'blue' | 'green']];
        },
      }),
      (d) => {
        if (d.transition.to === 'firing') fired.push(d.rule.name);
      },
    );
    for (let i = 0; i < 10; i++) {
      series.blue.record({ probe: 'a', env: 'blue', ok: false, durationMs: 5, startedAt: now, checks: [], extracted: {}, reason: 'status' });
      series.green.record({ probe: 'a', env: 'green', ok: true, durationMs: 5, startedAt: now, checks: [], extracted: {} });
    }
    // No promotion watched: the rule cannot hold, and the pairing of blue with green never runs.
    await evaluator.evaluateAll();
    const idle = await evaluator.holdsOn('watched-worse', 'blue');
    expect(idle!.holds).toBe(false);
    expect(idle!.figures.facts.map(({ fact, result, observed, skipped }) => ({ fact, result, observed, skipped }))).toEqual([
      { fact: 'promotionWatch', result: false, observed: false, skipped: undefined },
      { fact: 'errorRatioDiff', result: false, observed: undefined, skipped: true },
    ]);
    expect(baselineReads).toBe(0);
    expect(fired).toEqual([]);
    // Watched: the comparison is computed (blue 100 % failing against green's 0) and the rule fires.
    watching = 'blue';
    now += 1_000;
    await evaluator.evaluateAll();
    expect(fired).toEqual(['watched-worse']);
    expect(baselineReads).toBeGreaterThan(0);
    const held = await evaluator.holdsOn('watched-worse', 'blue');
    expect(held!.figures.facts[1]).toMatchObject({ fact: 'errorRatioDiff', observed: 1, result: true });
    expect(held!.figures.facts[1]!.skipped).toBeUndefined();
    // Under an \`any\`, a false condition decides nothing: the comparison is always computed.
    const either = new RuleEvaluator(
      config.rules.filter((rule) => rule.name === 'either'),
      () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now, series: (env) => [series[env as 'blue' | 'green']] }),
      () => undefined,
    );
    const any = await either.holdsOn('either', 'blue');
    expect(any!.holds).toBe(true);
    expect(any!.figures.facts[1]).toMatchObject({ fact: 'errorRatioDiff', observed: 1, result: true });
  });
});

/** A config of one probe, `a`, and one rule on it, `a-failing` (consecutive failures at least `failures`): what the reload tests change. */
const oneRule = (failures: number, lines: string) =>
  parseConfig(
    `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: a, path: / } ]
rules:
  - name: a-failing
${lines}
    when: { all: [ { fact: consecutiveFailures, params: { probe: a }, operator: greaterThanInclusive, value: ${failures} } ] }
`,
    {},
  );

describe('a reload that changes a rule in its cooldown (regression: the changed rule started without one, and re-paged or acted again at once about the same environment)', () => {
  const configOf = (description: string, cooldown: string) => oneRule(1, `    description: ${description}\n    severity: warning\n    cooldown: ${cooldown}`);

  function world() {
    const config = configOf('a fails', '10m');
    const series = new ProbeSeries('a', 'blue', config.windows, new Map(), T0);
    let now = T0;
    const transitions: string[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now, series: (env) => (env === 'blue' ? [series] : []) }),
      (d) => transitions.push(d.transition.to),
    );
    const record = async (ok: boolean, afterMs = 5_000) => {
      now += afterMs;
      series.record({ probe: 'a', env: 'blue', ok, durationMs: 5, startedAt: now, checks: [], extracted: {}, ...(ok ? {} : { reason: 'status' as const }) });
      await evaluator.onSample('a', 'blue');
    };
    return { evaluator, transitions, record };
  }

  it.each([
    ['its description changed: the cooldown holds on', 'a fails on the live side', '10m', ['pending', 'firing', 'resolved']],
    ['its cooldown shortened to 1m: it holds for 1m from the incident', 'a fails', '1m', ['pending', 'firing', 'resolved', 'pending', 'firing']],
  ])('%s', async (_name, description, cooldown, expected) => {
    const { evaluator, transitions, record } = world();
    await record(false);
    await record(true);
    expect(transitions).toEqual(['pending', 'firing', 'resolved']);
    // The incident acted: the agent starts the cooldown as it resolves.
    evaluator.startCooldown('a-failing', 'blue');
    await record(true);
    expect((await evaluator.replaceRules(configOf(description, cooldown).rules)).changed).toEqual(['a-failing']);
    // Failing again 10 s and then 70 s after the incident.
    await record(false);
    await record(true);
    await record(false, 60_000);
    expect(transitions).toEqual(expected);
  });
});

describe('a reload that changes a pending rule (regression: its `for` started over, putting off an owed rollback by a whole `for`)', () => {
  const configOf = (description: string, failures: number) => oneRule(failures, `    description: ${description}\n    severity: critical\n    for: 2m`);

  function world() {
    const config = configOf('a fails', 1);
    const series = new ProbeSeries('a', 'blue', config.windows, new Map(), T0);
    let now = T0;
    const transitions: { to: string; at: number }[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now, series: (env) => (env === 'blue' ? [series] : []) }),
      (d) => transitions.push({ to: d.transition.to, at: now - T0 }),
    );
    const fail = async (afterMs: number) => {
      now += afterMs;
      series.record({ probe: 'a', env: 'blue', ok: false, durationMs: 5, startedAt: now, checks: [], extracted: {}, reason: 'status' });
      await evaluator.onSample('a', 'blue');
    };
    return { evaluator, transitions, fail };
  }

  it('a changed description: it fires when the condition has held for `for`, counted from before the reload', async () => {
    const { evaluator, transitions, fail } = world();
    await fail(0);
    await fail(90_000);
    expect(transitions).toEqual([{ to: 'pending', at: 0 }]);
    expect((await evaluator.replaceRules(configOf('a fails on the live side', 1).rules)).changed).toEqual(['a-failing']);
    expect(evaluator.statuses()).toMatchObject([{ rule: 'a-failing', state: 'pending' }]);
    await fail(30_000);
    expect(transitions).toEqual([
      { to: 'pending', at: 0 },
      { to: 'firing', at: 120_000 },
    ]);
  });

  it('a changed line that does not hold: the episode clears at the next pass', async () => {
    const { evaluator, transitions, fail } = world();
    await fail(0);
    await fail(90_000);
    await evaluator.replaceRules(configOf('a fails', 100).rules);
    await fail(10_000);
    expect(transitions.map((t) => t.to)).toEqual(['pending', 'cleared']);
    expect(evaluator.statuses()).toMatchObject([{ rule: 'a-failing', state: 'inactive' }]);
  });
});
