/**
 * The judgement facts on series fed by hand, on a simulated clock: the comparison of an
 * environment with the other one (latency ratio, error-ratio difference, the regression test, each
 * with its minimum sample count), TLS days left kept through failures, the promotion watch, the
 * SLO burn rate and budget; and how the evaluator counts samples when a fact has no value.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import type { ProbeResult } from '../../probes/probe-result.js';
import { ProbeSeries } from '../../probes/probe-series.js';
import { SeriesPool } from '../../probes/series-pool.js';
import { SloBook, sloDefinitions } from '../../probes/slo-window.js';
import { FACTS, type FactContext, type FactParams } from '../../rules/facts.js';
import { RuleEvaluator, sloWindows } from '../../rules/rule-evaluator.js';

const T0 = 1_800_000_000_000;
const WINDOWS = [60_000, 300_000];

function series(env: string, probe = 'health') {
  return new ProbeSeries(probe, env, WINDOWS, new Map(), T0);
}

function result(s: ProbeSeries, at: number, ok: boolean, durationMs: number, extra: Partial<ProbeResult> = {}): ProbeResult {
  return { probe: s.probe, env: s.env, ok, durationMs, startedAt: at, checks: [], extracted: {}, ...(ok ? {} : { reason: 'status' as const }), ...extra };
}

/** `n` probes a second apart, latencies from `latency(i)`, failing where `fails(i)`. */
function feed(s: ProbeSeries, n: number, latency: (i: number) => number, fails: (i: number) => boolean = () => false) {
  for (let i = 0; i < n; i++) s.record(result(s, T0 + i * 1_000, !fails(i), latency(i)));
}

function context(blue: ProbeSeries[], green: ProbeSeries[], extra: Partial<FactContext> = {}): FactContext {
  return {
    ruleEnv: 'live',
    activeEnvironment: 'green',
    environments: ['blue', 'green'],
    now: T0 + 120_000,
    series: (env) => (env === 'blue' ? blue : green),
    ...extra,
  };
}

const fact = (name: string, ctx: FactContext, params: FactParams = {}) => FACTS[name]!.compute(ctx, params);
/** A spread of latencies around `ms` (±20 %), the same for every run. */
const around = (ms: number) => (i: number) => ms * (0.8 + (0.4 * ((i * 7919) % 101)) / 101);

describe('comparison facts: the live environment against the other', () => {
  it('latencyRatio: green 3x slower than blue at p95; blue against green is a third', () => {
    const blue = series('blue');
    const green = series('green');
    feed(blue, 100, around(40));
    feed(green, 100, around(120));
    const live = fact('latencyRatio', context([blue], [green]), { window: '5m' });
    expect(live.value).toBeGreaterThan(2.6);
    expect(live.value).toBeLessThan(3.4);
    expect(live.samples).toBe(100);
    const other = fact('latencyRatio', context([blue], [green]), { window: '5m', env: 'idle' });
    expect(other.value).toBeLessThan(0.4);
    expect(fact('latencyRatio', context([blue], [green]), { window: '5m', quantile: 0.5 }).value).toBeGreaterThan(2.6);
  });

  it('each needs minSamples probes on both sides (default 20), else says nothing', () => {
    const blue = series('blue');
    const green = series('green');
    feed(blue, 100, around(40));
    feed(green, 15, around(120));
    const ctx = context([blue], [green]);
    for (const name of ['latencyRatio', 'errorRatioDiff', 'latencyRegressionP'])
      expect(fact(name, ctx, { window: '5m' })).toEqual({ value: undefined, samples: 0 });
    expect(fact('latencyRatio', ctx, { window: '5m', minSamples: 10 }).value).toBeGreaterThan(2);
    expect(fact('latencyRatio', ctx, { window: '5m', minSamples: 10 }).samples).toBe(15);
  });

  it('errorRatioDiff: live minus the other, pooled over the probes', () => {
    const blue = series('blue');
    const green = series('green');
    feed(blue, 100, around(40), (i) => i % 50 === 0); // 2 %
    feed(green, 100, around(40), (i) => i % 10 === 0); // 10 %
    expect(fact('errorRatioDiff', context([blue], [green]), { window: '5m' }).value).toBeCloseTo(0.08, 10);
  });

  it('latencyRegressionP: significant for a shift, not for the same distribution, Bonferroni over probes', () => {
    const pairs = (greenMs: number) => {
      const blue = [series('blue', 'a'), series('blue', 'b')];
      const green = [series('green', 'a'), series('green', 'b')];
      for (const s of blue) feed(s, 100, around(40));
      for (const [index, s] of green.entries()) feed(s, 100, around(index === 0 ? greenMs : 40));
      return context(blue, green);
    };
    expect(fact('latencyRegressionP', pairs(120), { window: '5m' }).value).toBeLessThan(1e-10);
    expect(fact('latencyRegressionP', pairs(40), { window: '5m' }).value).toBeGreaterThan(0.05);
  });

  it('a rule with a comparison runs on a sample of either environment', async () => {
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }\nprobes: [ { name: health, path: / } ]\nrules:\n  - name: slower\n    severity: warning\n    when: { all: [ { fact: latencyRatio, params: { window: 5m }, operator: greaterThan, value: 1.5 } ] }\n`,
      {},
    );
    const blue = series('blue');
    const green = series('green');
    feed(green, 100, around(120));
    feed(blue, 99, around(40));
    const fired: string[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'green', environments: ['blue', 'green'], now: T0 + 120_000, series: (env) => (env === 'blue' ? [blue] : [green]) }),
      (d) => {
        if (d.transition.to === 'firing') fired.push(d.rule.name);
      },
    );
    // The sample that completes the comparison is the idle environment's.
    await evaluator.onSample('health', 'blue');
    expect(fired).toEqual(['slower']);
  });
});

describe('the live environment is judged on its time as live', () => {
  /** Both environments failed their first 30 probes at 900 ms (a deploy), then passed 30 at 10 ms; green went live at 30 s. */
  const deployed = () => {
    const [blue, green] = [series('blue'), series('green')];
    for (const s of [blue, green])
      feed(
        s,
        60,
        (i) => (i < 30 ? 900 : 10),
        (i) => i < 30,
      );
    return { blue, green, extra: { now: T0 + 60_000, liveSince: T0 + 30_000 } };
  };

  it.each([
    ['errorRatio', 0, 0.5],
    ['meanLatency', 0.01, 0.455],
    ['p95Latency', 0.01, 1.0], // 900 ms, as the bins place it
    ['samples', 30, 60],
  ])('%s of the live environment counts from its switch; the idle one, and a start, count the whole window', (name, sinceLive, whole) => {
    const { blue, green, extra } = deployed();
    const live = fact(name, context([blue], [green], extra), { window: '5m' });
    expect(live.value).toBeCloseTo(sinceLive, 2);
    expect(live.samples).toBe(30);
    // Through the environment's pool (a fact over every probe), the same.
    const pooled = fact(name, context([blue], [green], { ...extra, pool: (env) => SeriesPool.of(env, env === 'blue' ? [blue] : [green]) }), { window: '5m' });
    expect(pooled).toEqual(live);
    expect(fact(name, context([blue], [green], extra), { window: '5m', env: 'idle' }).value).toBeCloseTo(whole, 1);
    expect(fact(name, context([blue], [green], { now: extra.now }), { window: '5m' }).value).toBeCloseTo(whole, 1);
  });

  it('a comparison reads the whole window of both sides: the two releases over the same time', () => {
    const { blue, green, extra } = deployed();
    expect(fact('errorRatioDiff', context([blue], [green], extra), { window: '5m' })).toEqual({ value: 0, samples: 60 });
  });
});

describe('facts that name their probes', () => {
  /** Three probes on green, with different latencies and failures: a 10 ms, b 50 ms with a failure in 4, c 200 ms. */
  const fleet = () => {
    const green = ['a', 'b', 'c'].map((name) => series('green', name));
    feed(green[0]!, 40, () => 10);
    feed(
      green[1]!,
      40,
      () => 50,
      (i) => i % 4 === 0,
    );
    feed(green[2]!, 40, () => 200);
    return green;
  };
  const cases: [string, FactParams][] = [
    ['meanLatency', { probe: 'b' }],
    ['p95Latency', { probe: 'b' }],
    ['errorRatio', { probe: ['b', 'c'] }],
    ['meanLatency', { probe: ['c', 'b', 'c'] }],
    ['consecutiveFailures', { probe: 'b' }],
    ['samples', { probe: 'a' }],
    ['p95Latency', { probe: 'nowhere' }],
  ];

  it.each(cases)('%s %j: found by name, the same as a walk over every series', (name, params) => {
    const green = fleet();
    const walked = fact(name, context([], green), params);
    // With the lookup, reading the environment's whole list is not needed: it throws here.
    const byName = new Map(green.map((s) => [s.probe, s]));
    const looked = fact(
      name,
      context([], green, {
        series: () => {
          throw new Error('walked every series of the environment');
        },
        named: (env, probe) => (env === 'green' ? byName.get(probe) : undefined),
      }),
      params,
    );
    expect(looked).toEqual(walked);
  });

  it('pairs each probe with its counterpart by name in a comparison, as the walk does', () => {
    const green = fleet();
    const blue = ['a', 'b', 'c'].map((name) => series('blue', name));
    for (const s of blue) feed(s, 40, () => 20);
    const names = new Map([...blue, ...green].map((s) => [`${s.env}/${s.probe}`, s]));
    const named = (env: string, probe: string) => names.get(`${env}/${probe}`);
    for (const params of [{ window: '5m' }, { window: '5m', probe: 'c' }, { window: '5m', probe: ['b', 'c'] }]) {
      for (const name of ['latencyRatio', 'errorRatioDiff']) {
        const walked = fact(name, context(blue, green), params);
        expect(walked.value).toBeDefined();
        expect(fact(name, context(blue, green, { named }), params)).toEqual(walked);
      }
    }
  });

  it('reads the series of the environment the fact names, by name', () => {
    const green = fleet();
    const blue = [series('blue', 'b')];
    feed(blue[0]!, 40, () => 999);
    const names = (list: ProbeSeries[]) => new Map(list.map((s) => [s.probe, s]));
    const ctx = context(blue, green, { named: (env, probe) => (env === 'blue' ? names(blue) : names(green)).get(probe) });
    expect(fact('meanLatency', ctx, { probe: 'b', env: 'blue' }).value).toBe(0.999); // seconds
    expect(fact('meanLatency', ctx, { probe: 'b' }).value).toBe(0.05);
  });
});

describe('tlsDaysLeft and tlsValid', () => {
  it('days left as of now, the fewest among the probes; kept when a later probe has no handshake', () => {
    const a = series('green', 'a');
    const b = series('green', 'b');
    const tls = (days: number, valid = true) => ({
      expiresAt: T0 + days * 86_400_000,
      expiring: 'x',
      subject: 'x',
      issuer: 'ca',
      chainLength: 2,
      valid,
      checkedAt: T0,
      daysLeft: days,
    });
    a.record(result(a, T0, true, 10, { tls: tls(30) }));
    b.record(result(b, T0, false, 10, { tls: tls(10, false) }));
    b.record(result(b, T0 + 1_000, false, 1)); // refused: no TLS facts on the result
    const ctx = context([], [a, b], { now: T0 + 86_400_000 });
    expect(fact('tlsDaysLeft', ctx).value).toBeCloseTo(9, 10);
    expect(fact('tlsValid', ctx).value).toBe(false);
    expect(fact('tlsValid', ctx, { probe: 'a' }).value).toBe(true);
    expect(fact('tlsDaysLeft', context([], [series('green')])).value).toBeUndefined();
  });
});

describe('promotionWatch', () => {
  it('true only for the environment a promotion watches', () => {
    expect(fact('promotionWatch', context([], [], { watching: 'green' })).value).toBe(true);
    expect(fact('promotionWatch', context([], [], { watching: 'green' }), { env: 'idle' }).value).toBe(false);
    expect(fact('promotionWatch', context([], [])).value).toBe(false);
  });
});

describe('burnRate and budgetRemaining', () => {
  const config = parseConfig(
    `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }\nprobes: [ { name: health, path: / } ]\nslo:\n  availability: { objective: 0.99, period: 1d }\nrules:\n  - name: fast\n    severity: critical\n    when: { all: [ { fact: burnRate, params: { window: 1h }, operator: greaterThan, value: 10 } ] }\n`,
    {},
  );

  it('the rate over a window once half of it is observed; the budget over the period, of both environments', () => {
    const book = new SloBook(sloDefinitions(config), ['blue', 'green'], sloWindows(config));
    const green = series('green');
    // Green live for 40 minutes, one probe in ten failing: 10 % against a 1 % budget.
    const ctx = (now: number) => context([], [], { now, slo: (name) => book.get(name) });
    for (let i = 0; i < 1_200; i++) book.record(result(green, T0 + i * 1_000, i % 10 !== 0, 5), true);
    expect(fact('burnRate', ctx(T0 + 1_200_000), { window: '1h' }).value).toBeUndefined(); // a third of the hour
    expect(fact('burnRate', ctx(T0 + 1_200_000), { window: '1h' }).samples).toBe(1_200);
    for (let i = 1_200; i < 2_400; i++) book.record(result(green, T0 + i * 1_000, i % 10 !== 0, 5), true);
    const at = T0 + 2_400_000;
    expect(fact('burnRate', ctx(at), { window: '1h' }).value).toBeCloseTo(10, 6);
    expect(fact('burnRate', ctx(at), { window: '1h' }).samples).toBe(2_400);
    expect(fact('burnRate', ctx(at), { window: '1h', minCoverage: 0.9 }).value).toBeUndefined();
    expect(fact('burnRate', ctx(at), { window: '1h', env: 'idle' }).value).toBeUndefined();
    // 10 % of the day's probes failed: ten times the budget spent.
    expect(fact('budgetRemaining', ctx(at)).value).toBeCloseTo(-9, 6);
  });

  it('the idle environment and confirmation probes do not count', () => {
    const book = new SloBook(sloDefinitions(config), ['blue', 'green'], sloWindows(config));
    const blue = series('blue');
    for (let i = 0; i < 100; i++) book.record(result(blue, T0 + i * 1_000, false, 5), false);
    book.record(result(blue, T0, false, 5, { confirmation: { of: 'failure', attempt: 1 } }), true);
    expect(book.get()!.period(T0 + 100_000)).toMatchObject({ total: 0, bad: 0 });
  });
});

describe('the evaluator counts samples only from facts that have a value', () => {
  it('regression: an `any` over live and idle fires on the live environment though the idle one has no probes at all', async () => {
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }\nprobes: [ { name: health, path: / } ]\nrules:\n  - name: failing\n    severity: warning\n    minSamples: 5\n    when:\n      any:\n        - { fact: errorRatio, params: { env: live }, operator: greaterThan, value: 0.5 }\n        - { fact: errorRatio, params: { env: idle }, operator: greaterThan, value: 0.5 }\n`,
      {},
    );
    const blue = series('blue');
    feed(
      blue,
      10,
      () => 5,
      () => true,
    );
    const fired: string[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now: T0 + 10_000, series: (env) => (env === 'blue' ? [blue] : []) }),
      (d) => {
        if (d.transition.to === 'firing') fired.push(d.rule.name);
      },
    );
    await evaluator.onSample('health', 'blue');
    expect(fired).toEqual(['failing']);
  });

  it('regression: a rule of facts that count no probes (promotionWatch) can fire; minSamples has nothing to wait for', async () => {
    const config = parseConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }\nprobes: [ { name: health, path: / } ]\nrules:\n  - name: watched\n    severity: warning\n    when: { all: [ { fact: promotionWatch, operator: equal, value: true } ] }\n`,
      {},
    );
    const fired: string[] = [];
    const evaluator = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: 'green', environments: ['blue', 'green'], now: T0, series: () => [], watching: 'green' }),
      (d) => {
        if (d.transition.to === 'firing') fired.push(d.rule.name);
      },
    );
    await evaluator.evaluateAll();
    expect(fired).toEqual(['watched']);
  });
});
