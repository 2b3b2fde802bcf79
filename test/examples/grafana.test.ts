/**
 * examples/grafana/greenlight-dashboard.json: importable (a Prometheus `__inputs` entry),
 * provisionable (panels use the `datasource` variable, not an import-time placeholder), and every
 * PromQL expression in it — panel targets, annotations, variable queries — names only metrics a
 * live agent actually serves on /metrics.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPair, waitUntil, type Harness } from '../helpers/agent-harness.js';
import { hasTool, tempDir } from '../helpers/tools.js';

const ROOT = join(import.meta.dirname, '..', '..');
const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples', 'grafana', 'greenlight-dashboard.json'), 'utf8')) as Dashboard;

interface Target {
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
  annotations: { list: { name: string; expr?: string }[] };
}

/** The names of the metric families in an exposition, with the sample names a histogram or summary adds. */
function servedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** Every identifier in a PromQL expression that looks like one of greenlight's metric names. */
function metricNames(expr: string): string[] {
  return [...expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\b(greenlight_[a-zA-Z0-9_:]*|[a-z]+_[a-z_]+_total)\b/g)].map((m) => m[1]!);
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

function expressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of allPanels(dashboard.panels)) for (const target of panel.targets ?? []) out.push({ where: `panel "${panel.title}"`, expr: target.expr });
  for (const annotation of dashboard.annotations.list) if (annotation.expr) out.push({ where: `annotation "${annotation.name}"`, expr: annotation.expr });
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
    out.push({ where: `variable $${variable.name}`, expr: query.replace(/^label_values\((.*),\s*\w+\)$/, '$1') });
  }
  return out;
}

describe('the Grafana dashboard', () => {
  let harness: Harness;
  let served: Set<string>;
  beforeAll(async () => {
    harness = await startPair();
    await waitUntil(() => harness.agent.ready, 'the first probe round');
    served = servedNames(await (await fetch(`${harness.base}/metrics`)).text());
  });
  afterAll(() => harness?.close());

  it('is importable: a Prometheus data source input, a stable uid', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(dashboard.uid).toBe('greenlight');
    const datasource = dashboard.templating.list.find((v) => v.name === 'datasource');
    expect(datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
  });

  it('is provisionable: every panel and query reads the datasource variable', () => {
    for (const panel of allPanels(dashboard.panels).filter((p) => p.type !== 'row')) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) expect(target.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
    const ids = allPanels(dashboard.panels).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const provider = parse(readFileSync(join(ROOT, 'examples', 'grafana', 'provisioning', 'dashboards', 'greenlight.yml'), 'utf8')) as {
      apiVersion: number;
      providers: { type: string; options: { path: string } }[];
    };
    expect(provider.providers[0]).toMatchObject({ type: 'file' });
  });

  it('covers the live environment, probe success and latency, error ratios, rules, actions and alerts', () => {
    const used = new Set(expressions().flatMap(({ expr }) => metricNames(expr)));
    for (const name of [
      'greenlight_active_environment',
      'greenlight_probe_success',
      'greenlight_window_latency_seconds',
      'greenlight_probe_duration_seconds_bucket',
      'greenlight_window_error_ratio',
      'greenlight_rule_state',
      'greenlight_actions_total',
      'greenlight_alerts_total',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it.skipIf(!hasTool('promtool'))('has only valid PromQL (each expression checked by promtool as a recording rule)', () => {
    const concrete = (expr: string) => expr.replace(/\$__(rate_)?interval/g, '1m').replace(/\$\w+/g, '.*');
    const rules = expressions().map(({ expr }, index) => `      - record: dashboard:expr_${index}\n        expr: ${JSON.stringify(concrete(expr))}`);
    const file = join(tempDir('greenlight-grafana-'), 'exprs.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const check = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(check.status).toBe(0);
  });

  it('names only metrics the agent serves', () => {
    expect(served).toContain('greenlight_active_environment');
    const problems: string[] = [];
    for (const { where, expr } of expressions()) {
      const names = metricNames(expr);
      if (names.length === 0) problems.push(`${where}: no greenlight metric in ${expr}`);
      for (const name of names) if (!served.has(name)) problems.push(`${where}: ${name} is not served by greenlight`);
    }
    expect(problems).toEqual([]);
  });
});
