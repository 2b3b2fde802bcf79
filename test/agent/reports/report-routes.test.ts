/**
 * GET /api/v1/report on a real agent probing two simulators: once on the synthetic 30 days (its
 * data directory), once fresh; the contract's JSON fields, the Markdown and HTML forms, and the
 * 400s for bad input.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { Store } from '../../../agent/events/store.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { startSimulator } from '../../../simulator/alphastack-simulator.js';
import { tempDir } from '../../helpers/tools.js';
import { FailureCollector, type Report } from '../../../agent/reports/report-builder.js';
import { TurnQueue } from '../../../agent/http/turn-queue.js';
import { REPORT_PAGE_CSP } from '../../../agent/reports/render-html.js';
import { startAgent, startPair, waitUntil, type Harness } from '../../helpers/agent-harness.js';
import { localDate, writeSyntheticHistory, type SyntheticHistory } from '../../helpers/synthetic-history.js';

let history: SyntheticHistory;
let h: Harness;

beforeAll(async () => {
  history = writeSyntheticHistory();
  h = await startPair({ dataDir: history.dataDir, every: '500ms' });
  await waitUntil(() => h.agent.ready, 'the first probe round');
}, 60_000);

afterAll(async () => {
  await h?.close();
});

async function get(path: string): Promise<Response> {
  return fetch(`${h.base}${path}`);
}

/** Scheduled results so far, from the agent's own counter (no confirmation probes in this config). */
async function probesCounted(env: string): Promise<number> {
  const text = await (await get('/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^greenlight_probes_total\{([^}]*)\} (\d+)/.exec(line);
    if (match && match[1]!.includes(`env="${env}"`) && !match[1]!.includes('result="skipped"')) sum += Number(match[2]);
  }
  return sum;
}

describe('GET /api/v1/report', () => {
  it('answers the contract JSON: environments.<env>.days[], deployments, rollbacks[], incidents[]', async () => {
    const response = await get('/api/v1/report?since=30d');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const report = (await response.json()) as Report;
    for (const env of ['blue', 'green']) {
      expect(report.environments[env]!.days.length).toBeGreaterThanOrEqual(30);
      for (const day of report.environments[env]!.days) {
        expect(day).toMatchObject({
          date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
          p50Ms: expect.any(Number),
          p95Ms: expect.any(Number),
          errorRatio: expect.any(Number),
          probes: expect.any(Number),
        });
      }
    }
    expect(report.deployments).toMatchObject({ total: 9, succeeded: 5, failed: 2, rolledBack: 2, successRate: 5 / 9 });
    expect(report.rollbacks).toHaveLength(5);
    for (const rollback of report.rollbacks)
      expect(Object.keys(rollback)).toEqual(expect.arrayContaining(['at', 'from', 'to', 'rule', 'detectMs', 'switchMs']));
    expect(report.rollbacks.map(({ at, detectMs, switchMs }) => ({ at, detectMs, switchMs }))).toEqual(
      history.rollbacks.map(({ at, detectMs, switchMs }) => ({ at, detectMs, switchMs })),
    );
    expect(report.incidents.map((i) => i.id)).toEqual(history.incidents.map((i) => i.id));
    // Past days are the history's; the agent's own probes land in today's.
    const today = localDate(Date.now());
    for (const [date, day] of history.days.blue!) {
      if (date < today) expect(report.environments.blue!.days.find((d) => d.date === date)!.probes, date).toBe(day.probes);
    }
  });

  it("counts the agent's own probe results: every scheduled result is in the report at once", async () => {
    const today = localDate(Date.now());
    const before = await probesCounted('green');
    const report = (await (await get('/api/v1/report?since=1h')).json()) as Report;
    const after = await probesCounted('green');
    // The period starts at its first minute: the history's minutes from then on (two probes a
    // minute on green) are in it too, besides everything the agent has probed.
    const fromMinute = Math.floor(Date.parse(report.period.from) / 60_000);
    const fromHistory = 2 * Math.max(0, Math.ceil(history.end / 60_000) - fromMinute);
    const live = report.environments.green!.probes - fromHistory;
    expect(live).toBeGreaterThanOrEqual(before);
    expect(live).toBeLessThanOrEqual(after);
    expect(report.environments.green!.days.at(-1)!.date).toBe(today);
  });

  it('serves the Markdown and the self-contained HTML page with a CSP that allows its stylesheet only', async () => {
    const md = await get('/api/v1/report?since=7d&format=md');
    expect(md.status).toBe(200);
    expect(md.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    expect(await md.text()).toMatch(/^## greenlight report: the last 7d\n/);
    const html = await get('/api/v1/report?since=30d&format=html');
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html.headers.get('content-security-policy')).toBe(REPORT_PAGE_CSP);
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    const page = await html.text();
    expect(page).toContain('id="latency-blue"');
    expect(page).toContain('href="?since=7d&amp;format=html"');
  });

  it('is linked from the status page', async () => {
    const page = await (await get('/')).text();
    expect(page).toContain('href="/api/v1/report?since=7d&amp;format=html"');
  });

  it.each([
    ['since=-1', /^since must be a duration such as 24h, 7d or 30d, not "-1"$/],
    ['since=7x', /^since must be a duration such as 24h, 7d or 30d, not "7x"$/],
    ['since=0d', /^since must be from 1m to 400d, not "0d"$/],
    ['since=1000d', /^since must be from 1m to 400d, not "1000d"$/],
    ['format=pdf', /^format must be json, md, html, not "pdf"$/],
    ['since=7d&format=', /^format must be json, md, html, not ""$/],
    // Regression: a second value, or a misspelt name, was ignored (a 1d report for since=1d&since=30d, a 7d one for sinse=30d).
    ['since=1d&since=30d', /^since is given 2 times \("1d", then "30d"\): give it once$/],
    ['format=json&since=7d&format=html', /^format is given 2 times \("json", then "html"\): give it once$/],
    ['sinse=30d', /^\/api\/v1\/report takes no query parameter "sinse"; it takes since, format$/],
    ['since=7d&limit=5', /^\/api\/v1\/report takes no query parameter "limit"; it takes since, format$/],
  ])('answers 400 naming the problem for ?%s', async (query, message) => {
    const response = await get(`/api/v1/report?${query}`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(message);
  });
});

describe('a report of an agent that has just started', () => {
  it('has today only, no deployments (success rate null) and every field present', async () => {
    const fresh = await startPair({ every: '200ms' });
    onTestFinished(() => fresh.close());
    await waitUntil(() => fresh.agent.ready, 'the first probe round');
    const report = (await (await fetch(`${fresh.base}/api/v1/report`)).json()) as Report;
    expect(report.period.since).toBe('7d');
    expect(report.environments.blue!.days).toHaveLength(1);
    expect(report.environments.blue!.days[0]!.probes).toBeGreaterThan(0);
    expect(report.deployments).toMatchObject({ total: 0, succeeded: 0, failed: 0, rolledBack: 0, successRate: null });
    expect(report.deployments.weeks.length).toBeGreaterThanOrEqual(1);
    expect(report.rollbacks).toEqual([]);
    expect(report.incidents).toEqual([]);
  });
});

describe('what the rollups count', () => {
  it('scheduled results only: confirmation re-probes stay out, as they stay out of the windows', async () => {
    const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    onTestFinished(async () => {
      await Promise.all([blue.close(), green.close()]);
    });
    const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-data-')}
environments:
  blue: { url: "${blue.url}" }
  green: { url: "${green.url}" }
probeDefaults: { every: 300ms, jitter: 0, confirm: { count: 2, spacing: 20ms, maxPerSecond: 50 } }
probes:
  - name: universe
    path: /api/alphastack/universe
    expect: { json: [{ path: $.universe, nonEmpty: true }] }
`);
    const { agent } = await startAgent(config);
    onTestFinished(() => agent.close());
    const base = `http://127.0.0.1:${agent.address!.port}`;
    await waitUntil(() => agent.ready, 'the first probe round');
    await fetch(`${blue.url}/__faults`, { method: 'POST', body: JSON.stringify({ emptyUniverse: true }) });
    const metric = async (name: string) => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) && line.includes('env="blue"') && !line.includes('result="skipped"'))
        .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    };
    await waitUntil(async () => (await metric('greenlight_confirmation_probes_total')) >= 2, 'confirmation probes of blue');
    await fetch(`${blue.url}/__faults`, { method: 'DELETE' });
    const before = (await metric('greenlight_probes_total')) - (await metric('greenlight_confirmation_probes_total'));
    const report = (await (await fetch(`${base}/api/v1/report?since=1h`)).json()) as Report;
    const after = (await metric('greenlight_probes_total')) - (await metric('greenlight_confirmation_probes_total'));
    expect(report.environments.blue!.probes).toBeGreaterThanOrEqual(before);
    expect(report.environments.blue!.probes).toBeLessThanOrEqual(after);
    expect(report.environments.blue!.failures).toBeGreaterThan(0);
  });
});

describe('a report over a long journal of flapping probes', () => {
  it('takes turns with probing (regression: the builder went through every probe.down and probe.up in one piece, holding the event loop for half a second at 300,000 of them)', async () => {
    // 30 days of 1,500 probe × environment series flapping a hundred times each, and one incident
    // whose time to detect comes from them: what a big fleet's journal holds.
    const dataDir = tempDir('greenlight-data-');
    const end = Date.now() - 60_000;
    const start = end - 30 * 86_400_000;
    const events: GreenlightEvent[] = [];
    const push = (at: number, type: string, fields: Partial<GreenlightEvent>, data: Record<string, unknown> = {}) =>
      events.push({
        id: 0,
        time: new Date(at).toISOString(),
        type,
        severity: 'info',
        env: null,
        probe: null,
        rule: null,
        message: type,
        data,
        ...fields,
      } as GreenlightEvent);
    for (let series = 0; series < 1_500; series++) {
      const name = { probe: `probe-${Math.floor(series / 2)}`, env: series % 2 === 0 ? 'blue' : 'green' };
      for (let flap = 0; flap < 100; flap++) {
        const at = start + flap * 25_000_000 + series * 1_000;
        push(at, 'probe.down', name, { reason: 'timeout' });
        push(at + 30_000, 'probe.up', name);
      }
    }
    const firing = end - 86_400_000;
    push(firing - 4_000, 'probe.down', { probe: 'health', env: 'blue' }, { reason: 'status' });
    push(
      firing,
      'rule.firing',
      { env: 'blue', rule: 'live-health' },
      {
        severity: 'critical',
        incident: 'live-health#1',
        figures: { facts: [{ fact: 'consecutiveFailures', params: { probe: 'health' } }], env: 'blue', samples: 3 },
      },
    );
    push(firing + 300, 'traffic.switched', { env: 'green', rule: 'live-health' }, { from: 'blue', to: 'green', kind: 'rollback', incident: 'live-health#1' });
    events.sort((a, b) => a.time.localeCompare(b.time));
    events.forEach((event, index) => ((event as { id: number }).id = index + 1));
    const store = Store.open(dataDir);
    for (let i = 0; i < events.length; i += 20_000) store.appendEvents(events.slice(i, i + 20_000));
    store.close();

    const pair = await startPair({ dataDir, every: '100ms' });
    onTestFinished(() => pair.close());
    await waitUntil(() => pair.agent.ready, 'the first probe round');
    // Whether each probe event is digested inside a slice of the turn queue (the builder, which
    // runs in one piece after the reading, then gets one interval per failure, not the events).
    let inSlice = false;
    const run = TurnQueue.prototype.run;
    const slices = vi.spyOn(TurnQueue.prototype, 'run').mockImplementation(function <T>(this: TurnQueue, slice: () => T) {
      return run.call(this, () => {
        inSlice = true;
        try {
          return slice();
        } finally {
          inSlice = false;
        }
      });
    });
    onTestFinished(() => slices.mockRestore());
    let digested = 0;
    let outside = 0;
    const add = FailureCollector.prototype.add;
    const adds = vi.spyOn(FailureCollector.prototype, 'add').mockImplementation(function (this: FailureCollector, event) {
      if (inSlice) digested++;
      else outside++;
      add.call(this, event);
    });
    onTestFinished(() => adds.mockRestore());
    const response = await fetch(`${pair.base}/api/v1/report?since=30d`);
    const report = (await response.json()) as Report;
    expect(response.status).toBe(200);
    expect(report.rollbacks).toMatchObject([{ rule: 'live-health', detectMs: 4_000, switchMs: 300 }]);
    // Every one of the 300,000 probe events, a page per slice: no one piece of the reading or the building goes through them all.
    expect(digested).toBeGreaterThanOrEqual(300_000);
    expect(outside).toBe(0);
  }, 60_000);
});
