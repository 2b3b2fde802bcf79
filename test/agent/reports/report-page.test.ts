/**
 * The HTML report in a real browser: Debian's chromium through playwright-core, against a real
 * agent on the synthetic 30 days. The page loads under its CSP without a single violation or
 * script, its charts are there with a point per day, and every figure it shows is the JSON's.
 *
 * Screenshot: written to a temporary directory on every run, and to docs/screenshots/ when
 * GREENLIGHT_UPDATE_SCREENSHOTS=1.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../../agent/reports/report-builder.js';
import { latency, percent, rate } from '../../../agent/reports/report-format.js';
import { startPair, waitUntil, type Harness } from '../../helpers/agent-harness.js';
import { localDate, writeSyntheticHistory } from '../../helpers/synthetic-history.js';
import { hasChromium, launchBrowser, type PageBrowser } from '../../helpers/browser.js';

const WAIT = { timeout: 20_000 };
const available = hasChromium();

describe.skipIf(!available)('the HTML report (headless chromium)', () => {
  let harness: Harness;
  let browser: Browser;
  let pages: PageBrowser;
  let shots: string;

  beforeAll(async () => {
    harness = await startPair({ dataDir: writeSyntheticHistory().dataDir });
    pages = await launchBrowser('greenlight-report-shots-');
    ({ browser, shots } = pages);
    await waitUntil(() => harness.agent.ready, 'the first probe round');
  }, 60_000);

  afterAll(async () => {
    await pages?.close(['report-laptop.png', 'report-deployments.png']);
    await harness?.close();
  });

  /** Script errors, CSP violations and failed loads: a self-contained page has none. */
  function watch(page: Page): string[] {
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('request', (request) => {
      if (!request.url().includes('/api/v1/report')) problems.push(`request: ${request.url()}`);
    });
    return problems;
  }

  it('shows the charts and the same figures as the JSON, under its CSP, fetching nothing', async () => {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    const problems = watch(page);
    const json = (await (await fetch(`${harness.base}/api/v1/report?since=30d`)).json()) as Report;
    await page.goto(`${harness.base}/api/v1/report?since=30d&format=html`);
    await page.locator('h1', { hasText: 'greenlight report: the last 30d' }).waitFor(WAIT);

    // Charts: daily latency and errors per environment, deployments per week, the timeline.
    for (const id of ['latency-blue', 'latency-green', 'errors-blue', 'errors-green', 'deployments', 'timeline']) {
      const box = await page.locator(`svg#${id}`).boundingBox();
      expect(box?.width, id).toBeGreaterThan(500);
      expect(box?.height, id).toBeGreaterThan(80);
    }
    const today = localDate(Date.now());
    for (const env of ['blue', 'green']) {
      const days = json.environments[env]!.days;
      const points = await page
        .locator(`svg#latency-${env} circle[data-series="p95"]`)
        .evaluateAll((nodes) => nodes.map((n) => ({ date: n.getAttribute('data-date'), value: Number(n.getAttribute('data-value')) })));
      expect(points.map((p) => p.date)).toEqual(days.map((d) => d.date));
      expect(await page.locator(`svg#errors-${env} rect.bar`).count()).toBe(days.length);
      // Each past day's row: its figures, as data and as text (today's go on changing while the agent probes).
      const rows = await page.locator(`table.days[data-env="${env}"] tbody tr`).evaluateAll((nodes) =>
        nodes.map((n) => ({
          date: n.getAttribute('data-date')!,
          probes: Number(n.getAttribute('data-probes')),
          p50: Number(n.getAttribute('data-p50')),
          p95: Number(n.getAttribute('data-p95')),
          errorRatio: Number(n.getAttribute('data-error-ratio')),
          cells: [...n.querySelectorAll('td')].map((td) => td.textContent),
        })),
      );
      expect(rows).toHaveLength(days.length);
      for (const day of days.filter((d) => d.date < today)) {
        const row = rows.find((r) => r.date === day.date)!;
        expect({ probes: row.probes, p50: row.p50, p95: row.p95, errorRatio: row.errorRatio }, `${env} ${day.date}`).toEqual({
          probes: day.probes,
          p50: day.p50Ms,
          p95: day.p95Ms,
          errorRatio: day.errorRatio,
        });
        expect(row.cells, `${env} ${day.date}`).toEqual([
          day.date,
          day.probes.toLocaleString('en-US'),
          day.failures.toLocaleString('en-US'),
          percent(day.errorRatio),
          latency(day.p50Ms),
          latency(day.p95Ms),
          latency(day.p99Ms),
        ]);
        expect(points.find((p) => p.date === day.date)!.value).toBe(day.p95Ms);
      }
    }
    // Deployments per week: a bar segment per outcome and week, the table's figures the JSON's.
    for (const week of json.deployments.weeks) {
      const row = page.locator(`table.weeks tr[data-week="${week.week}"]`);
      expect(await row.getAttribute('data-total')).toBe(String(week.total));
      expect(await row.getAttribute('data-rolled-back')).toBe(String(week.rolledBack));
      for (const [stack, value] of [
        ['succeeded', week.succeeded],
        ['failed', week.failed],
        ['rolled back', week.rolledBack],
      ] as const) {
        const bar = page.locator(`svg#deployments rect[data-week="${week.week}"][data-stack="${stack}"]`);
        expect(value === 0 ? await bar.count() : Number(await bar.getAttribute('data-value')), `${week.week} ${stack}`).toBe(value === 0 ? 0 : value);
      }
    }
    const card = page.locator('[data-figure="deployments.successRate"]');
    expect(Number(await card.getAttribute('data-value'))).toBe(json.deployments.successRate);
    expect(await card.locator('.value').textContent()).toBe(rate(json.deployments.successRate));
    // Rollbacks: a marker each on the timeline, a row each with its times.
    expect(await page.locator('svg#timeline path.mark.s-rollback').count()).toBe(json.rollbacks.length);
    const rollbackRows = await page
      .locator('table.rollbacks tbody tr')
      .evaluateAll((nodes) =>
        nodes.map((n) => ({ at: n.getAttribute('data-at'), detect: n.getAttribute('data-detect-ms'), switch: n.getAttribute('data-switch-ms') })),
      );
    expect(rollbackRows).toEqual(
      json.rollbacks.map((r) => ({ at: r.at, detect: r.detectMs === null ? '' : String(r.detectMs), switch: r.switchMs === null ? '' : String(r.switchMs) })),
    );
    expect(await page.locator('svg#timeline rect.span').count()).toBe(json.incidents.length);
    expect(await page.locator('table.incidents tbody tr').count()).toBe(json.incidents.length);

    // Fits a laptop without sideways scrolling.
    expect(await page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await page.screenshot({ path: join(shots, 'report-laptop.png'), fullPage: false });
    expect(statSync(join(shots, 'report-laptop.png')).size).toBeGreaterThan(20_000);
    await page.evaluate("document.querySelector('#deploy-title').closest('section').scrollIntoView()");
    await page.screenshot({ path: join(shots, 'report-deployments.png'), fullPage: false });
    expect(problems).toEqual([]);
    await context.close();
  });

  it('is reached from the status page, and reads on a phone (charts scroll in their own frame)', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    const problems = watch(page);
    await page.goto(`${harness.base}/`);
    await page.locator('#report-link').click();
    await page.locator('h1', { hasText: 'greenlight report: the last 7d' }).waitFor(WAIT);
    expect(page.url()).toBe(`${harness.base}/api/v1/report?since=7d&format=html`);
    expect(await page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth + 1')).toBe(true);
    await page.locator('nav a', { hasText: '30d' }).click();
    await page.locator('h1', { hasText: 'the last 30d' }).waitFor(WAIT);
    // The status page's own requests (its API and stream) are not the report's: only the report's own load is checked.
    expect(problems.filter((p) => !p.startsWith('request:'))).toEqual([]);
    await context.close();
  });
});
