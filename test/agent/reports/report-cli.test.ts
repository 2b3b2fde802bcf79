/**
 * `greenlight report` as a user runs it: the built CLI (npm test builds first), reading the
 * synthetic 30 days straight from the databases with --config, and from a running agent with
 * --url; usage mistakes exit 2 naming the option, unreadable sources exit 1 saying why.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadAgentConfig } from '../../../agent/reload/agent-config.js';
import type { Report } from '../../../agent/reports/report-builder.js';
import { Store } from '../../../agent/events/store.js';
import { SloBook, sloDefinitions } from '../../../probes/slo-window.js';
import { sloWindows } from '../../../rules/rule-evaluator.js';
import { startPair, waitUntil, type Harness } from '../../helpers/agent-harness.js';
import { cli } from '../../helpers/cli.js';
import { localDate, writeSyntheticHistory, type SyntheticHistory } from '../../helpers/synthetic-history.js';
import { tempDir } from '../../helpers/tools.js';

let history: SyntheticHistory;
let configFile: string;

function configFor(dataDir: string): string {
  const file = join(tempDir(), 'greenlight.yaml');
  writeFileSync(
    file,
    `dataDir: ${dataDir}
timezone: America/New_York
environments:
  blue: { url: "http://127.0.0.1:1" }
  green: { url: "http://127.0.0.1:2" }
slo:
  availability: { objective: 0.995, period: 30d }
probes:
  - { name: health, path: /api/health }
  - { name: universe, path: /api/alphastack/universe }
`,
  );
  return file;
}

beforeAll(() => {
  history = writeSyntheticHistory();
  configFile = configFor(history.dataDir);
});

describe('greenlight report --config (the databases, no agent)', () => {
  it('prints the JSON report of the period with every figure of the history', async () => {
    const run = await cli(['report', '--config', configFile, '--since', '30d', '--format', 'json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.period.since).toBe('30d');
    for (const env of ['blue', 'green']) {
      for (const [date, day] of history.days[env]!) {
        const got = report.environments[env]!.days.find((d) => d.date === date);
        // The first day may start before the period (the CLI's clock runs on from the history's end).
        if (got && date !== localDate(history.start))
          expect({ date, probes: got.probes, failures: got.failures }).toEqual({ date, probes: day.probes, failures: day.failures });
      }
    }
    expect(report.deployments).toMatchObject({ total: 9, succeeded: 5, failed: 2, rolledBack: 2, unfinished: 1 });
    expect(report.rollbacks.map(({ at, from, to, rule, detectMs, switchMs }) => ({ at, from, to, rule, detectMs, switchMs }))).toEqual(
      history.rollbacks.map(({ at, from, to, rule, detectMs, switchMs }) => ({ at, from, to, rule, detectMs, switchMs })),
    );
    expect(report.incidents.map((i) => [i.id, i.durationMs])).toEqual(history.incidents.map((i) => [i.id, i.durationMs]));
    expect(report.activeEnvironment).toBe(history.live);
    // The SLO is the config's; no counts were saved, so no budget figure yet.
    expect(report.slo).toEqual([{ name: 'availability', objective: 0.995, periodMs: 30 * 86_400_000, budgetRemaining: null }]);
  });

  it('prints Markdown by default, and the HTML page with --format html', async () => {
    const md = await cli(['report', '--config', configFile]);
    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/^## greenlight report: the last 7d\n/);
    expect(md.stdout).toContain('### Daily performance');
    const html = await cli(['report', '-c', configFile, '-f', 'html', '--since', '14d']);
    expect(html.code).toBe(0);
    expect(html.stdout).toMatch(/^<!doctype html>/);
    expect(html.stdout).toContain('<svg class="chart" id="latency-blue"');
    expect(html.stdout).not.toContain('<script');
  });

  it('includes the SLO budget left as the agent last saved it, with no rollups written yet', async () => {
    const dataDir = tempDir('greenlight-slo-');
    const file = configFor(dataDir);
    const config = await loadAgentConfig(file, {});
    const book = new SloBook(sloDefinitions(config), ['blue', 'green'], sloWindows(config));
    const now = Date.now();
    // 4 bad of 1,000 against a 0.5 % budget: 80 % of it spent.
    for (let i = 0; i < 1_000; i++)
      book.record({ probe: 'health', env: 'blue', ok: i % 250 !== 0, durationMs: 5, startedAt: now - 1_000 + i, checks: [], extracted: {} }, true);
    const store = Store.open(dataDir);
    store.set('slo', book.save());
    store.close();
    const run = await cli(['report', '--config', file, '--format', 'json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.slo).toHaveLength(1);
    expect(report.slo[0]!.budgetRemaining).toBeCloseTo(0.2, 6);
    expect(report.environments.blue).toMatchObject({ probes: 0, days: [] });
    const md = await cli(['report', '--config', file]);
    expect(md.stdout).toContain('- **SLO availability** (99.5 % over 30d): 20 % of the error budget left');
  });

  it('says which database is missing when the dataDir holds none (exit 1)', async () => {
    const run = await cli(['report', '--config', configFor(tempDir('greenlight-empty-'))]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^greenlight report: no state database at .*greenlight\.db: has an agent run with this dataDir \(GREENLIGHT_DATA_DIR\)\?/);
  });
});

describe('greenlight report: usage mistakes exit 2 naming the option', () => {
  it.each([
    [['--since', '7x'], /^greenlight report: --since must be a duration such as 24h, 7d or 30d, not "7x"$/m],
    [['--since=-1'], /^greenlight report: --since must be a duration such as 24h, 7d or 30d, not "-1"$/m],
    [['--since', '500d'], /^greenlight report: --since must be from 1m to 400d, not "500d"$/m],
    [['--format', 'pdf'], /^greenlight report: --format must be json, md, html, not "pdf"$/m],
    [['--url', 'http://127.0.0.1:1', '--config', 'x.yaml'], /give --url \(ask a running agent\) or --config \(read its databases\), not both/],
    [['--sinse', '7d'], /Unknown option '--sinse'[\s\S]*usage: greenlight report \[--since 7d\]/],
  ])('%j', async (args, message) => {
    const run = await cli(['report', ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('a bad config exits 2 with its key path', async () => {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(file, 'environments: {}\nprobes: []\nrollups: { retention: { maxAge: soon } }\n');
    const run = await cli(['report', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('rollups.retention.maxAge');
  });
});

describe('greenlight report --url against an agent with no history yet', () => {
  it('takes the report of a fresh agent, whose figures are mostly null (the CLI checks the shape of what it reads)', async () => {
    const fresh = await startPair();
    try {
      const answer = await (await fetch(`${fresh.base}/api/v1/report?since=1d`)).text();
      expect(answer).toContain('null');
      const run = await cli(['report', '--url', fresh.base, '--since', '1d', '--format', 'json']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ deployments: { total: 0, successRate: null } });
    } finally {
      await fresh.close();
    }
  });
});

describe('greenlight report --url (a running agent)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startPair({ dataDir: writeSyntheticHistory().dataDir });
    await waitUntil(() => h.agent.ready, 'the first probe round');
  }, 60_000);
  afterAll(() => h?.close());

  it('asks the agent and renders what it answers, the same figures as its API', async () => {
    const run = await cli(['report', '--url', h.base, '--since', '30d', '--format', 'json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.deployments).toMatchObject({ total: 9, successRate: 5 / 9 });
    expect(report.rollbacks).toHaveLength(5);
    const md = await cli(['report', '--url', h.base]);
    expect(md.code).toBe(0);
    expect(md.stdout).toContain('- **Rollbacks:**');
  });

  it('escapes every value of the JSON it read in the HTML it writes (regression: dates, counts, weeks and outcomes went in as they came, and a saved page has no CSP)', async () => {
    const report = (await (await fetch(`${h.base}/api/v1/report?since=30d`)).json()) as Report;
    const evil = (name: string) => `"><script>alert("${name}")</script><img src=x onerror=alert(1)>`;
    // Every text the report carries (a count or an outcome that is not one is refused before rendering: the CLI checks the answer's shape).
    const day = report.environments.blue!.days[0]! as unknown as Record<string, unknown>;
    day.date = evil('date');
    const week = report.deployments.weeks[0]! as unknown as Record<string, unknown>;
    for (const key of ['week', 'from']) week[key] = evil(key);
    Object.assign(
      report.deployments.promotions.find((p) => p.outcome !== 'succeeded')!,
      { step: evil('step'), reason: evil('reason') },
    );
    Object.assign(report.rollbacks[0]!, { from: evil('from'), reason: evil('rollback') });
    Object.assign(report.incidents[0]!, { rule: evil('rule') });
    Object.assign(report.topFailingProbes[0]!, { probe: evil('probe') });
    // Something that answers like an agent (the header the CLI checks) with that JSON.
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'greenlight-version': '0.1.0' });
      res.end(JSON.stringify(report));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const run = await cli(['report', '--url', `http://127.0.0.1:${(server.address() as AddressInfo).port}`, '--since', '30d', '--format', 'html']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('&lt;script&gt;alert(&quot;date&quot;)');
    expect(run.stdout).not.toMatch(/<script|<img/);
  });

  it('says when no agent answers (exit 1)', async () => {
    const run = await cli(['report', '--url', 'http://127.0.0.1:1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/agent at http:\/\/127\.0\.0\.1:1 refused the connection: is greenlight running\? \(--url\)/);
  });
});
