/**
 * examples/prometheus/: the alerting rules pass `promtool check rules` and their unit tests
 * (`promtool test rules`), the scrape config passes `promtool check config`, and a real
 * Prometheus (Debian's) scraping a live agent answers greenlight_active_environment through its
 * HTTP API, with the example rules loaded and evaluated.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { startPair, waitUntil, type Harness } from '../helpers/agent-harness.js';
import { freePort, hasTool, tempDir } from '../helpers/tools.js';

const DIR = join(import.meta.dirname, '..', '..', 'examples', 'prometheus');

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** End a child: SIGTERM, then SIGKILL if it has not exited in 5 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

describe.skipIf(!hasTool('promtool'))('the example Prometheus rules and config', () => {
  it('pass promtool check rules', () => {
    const check = promtool('check', 'rules', 'greenlight-rules.yml');
    expect(check.output).toContain('SUCCESS');
    expect(check.status).toBe(0);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const test = promtool('test', 'rules', 'greenlight-rules.test.yml');
    expect(test.output).toContain('SUCCESS');
    expect(test.status).toBe(0);
  });

  it('the scrape config passes promtool check config', () => {
    const check = promtool('check', 'config', 'prometheus.yml');
    expect(check.output).toContain('is valid prometheus config file syntax');
    expect(check.status).toBe(0);
  });
});

describe('the example alerting rules', () => {
  it('name only metrics the agent serves', async () => {
    const harness = await startPair();
    try {
      const exposition = await (await fetch(`${harness.base}/metrics`)).text();
      const served = new Set([...exposition.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
      const file = parse(readFileSync(join(DIR, 'greenlight-rules.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
      const rules = file.groups.flatMap((group) => group.rules);
      expect(rules.length).toBeGreaterThanOrEqual(8);
      for (const rule of rules) {
        const names = [...rule.expr.replace(/"[^"]*"/g, '""').matchAll(/\bgreenlight_\w+/g)].map((m) => m[0]);
        if (!/\bup\b/.test(rule.expr)) expect(names.length, rule.alert).toBeGreaterThan(0);
        for (const name of names) expect(served, `${rule.alert}: ${name}`).toContain(name);
      }
    } finally {
      await harness.close();
    }
  });
});

describe.skipIf(!hasTool('prometheus'))('a real Prometheus scraping the agent', () => {
  let harness: Harness | undefined;
  let prometheus: ChildProcess | undefined;
  afterEach(async () => {
    if (prometheus) await stop(prometheus);
    prometheus = undefined;
    await harness?.close();
    harness = undefined;
  });

  it('answers greenlight_active_environment with the live environment, and evaluates the example rules', async () => {
    harness = await startPair();
    const h = harness;
    await waitUntil(() => h.agent.ready, 'the first probe round');
    const dir = tempDir('greenlight-prometheus-');
    const target = `${h.agent.address!.host}:${h.agent.address!.port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${join(DIR, 'greenlight-rules.yml')}
scrape_configs:
  - job_name: greenlight
    static_configs:
      - targets: ['${target}']
`,
    );
    // Prometheus cannot listen on port 0 and say which port it got: it is handed one found free,
    // and should another process take it first, Prometheus exits and the next one is tried.
    const output: string[] = [];
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      output.length = 0;
      const child = spawn(
        'prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      prometheus = child;
      child.stdout!.on('data', (chunk: Buffer) => output.push(String(chunk)));
      child.stderr!.on('data', (chunk: Buffer) => output.push(String(chunk)));
      await waitUntil(
        async () => child.exitCode !== null || (await fetch(`http://127.0.0.1:${port}/-/ready`).catch(() => undefined))?.status === 200,
        'Prometheus to be ready',
        30_000,
      );
      if (child.exitCode === null) break;
      if (!/address already in use/i.test(output.join('')) || attempt === 5) throw new Error(`prometheus exited with ${child.exitCode}: ${output.join('')}`);
    }
    const api = `http://127.0.0.1:${port}/api/v1`;

    type Vector = { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    let answer: Vector | undefined;
    await waitUntil(
      async () => {
        if (prometheus!.exitCode !== null) throw new Error(`prometheus exited with ${prometheus!.exitCode}: ${output.join('')}`);
        try {
          answer = (await (await fetch(`${api}/query?query=${encodeURIComponent('greenlight_active_environment == 1')}`)).json()) as Vector;
          return answer.status === 'success' && answer.data.result.length === 1;
        } catch {
          return false; // not listening yet
        }
      },
      'Prometheus to answer greenlight_active_environment',
      45_000,
    );
    expect(answer!.data.result[0]!.metric).toMatchObject({ __name__: 'greenlight_active_environment', env: 'blue', job: 'greenlight', instance: target });
    expect(answer!.data.result[0]!.value[1]).toBe('1');

    // Both environments are there, and the example rules load and evaluate without errors.
    const all = (await (await fetch(`${api}/query?query=greenlight_active_environment`)).json()) as Vector;
    expect(all.data.result.map((r) => r.metric.env).sort()).toEqual(['blue', 'green']);
    type Rules = { data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] } };
    await waitUntil(
      async () => {
        const rules = (await (await fetch(`${api}/rules`)).json()) as Rules;
        const group = rules.data.groups.find((g) => g.name === 'greenlight');
        return group !== undefined && group.rules.length > 0 && group.rules.every((rule) => rule.health === 'ok');
      },
      'every example rule evaluated with health ok',
      30_000,
    );
  }, 90_000);
});
